/**
 * A minimal ONNX ModelProto encoder, enough to build the small normalization graphs the
 * benchmark runs through ONNX Runtime Web: float32 inputs and outputs with static shapes,
 * initializers as raw little-endian data, nodes with int / float / ints attributes, and any
 * number of opset imports. Field numbers follow onnx/onnx.proto (proto2, so repeated scalars
 * are written unpacked, which every protobuf parser accepts).
 */

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

export type AttributeValue = number | readonly number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  /** Integers are written as INT, `{ float }` as FLOAT, arrays as INTS. */
  attributes?: Record<string, AttributeValue>;
  domain?: string;
  name?: string;
}

export interface OnnxInitializer {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

export interface OnnxValue {
  name: string;
  dims: readonly number[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValue[];
  outputs: readonly OnnxValue[];
  initializers?: readonly OnnxInitializer[];
  /** Opset imports; default `{ '': 17 }`. */
  opsets?: Record<string, number>;
}

/** Protobuf wire writer: varints, fixed32 and length-delimited fields. */
class Writer {
  readonly #bytes: number[] = [];

  varint(value: number | bigint): this {
    // int64 fields take negative values as 10-byte two's complement varints.
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      this.#bytes.push(v ? low | 0x80 : low);
    } while (v);
    return this;
  }

  tag(field: number, wire: 0 | 2 | 5): this {
    return this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value);
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.tag(field, 5);
    for (const x of b) this.#bytes.push(x);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    for (const x of data) this.#bytes.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

function tensorProto(w: Writer, t: OnnxInitializer): void {
  for (const d of t.dims) w.int(1, d); // dims
  w.int(2, t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64); // data_type
  w.string(8, t.name); // name
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)); // raw_data (little-endian hosts)
}

function valueInfo(w: Writer, v: OnnxValue): void {
  w.string(1, v.name); // name
  w.message(2, (type) => // type: TypeProto
    type.message(1, (tensor) => { // tensor_type
      tensor.int(1, DataType.FLOAT); // elem_type
      tensor.message(2, (shape) => { // shape
        for (const d of v.dims) shape.message(1, (dim) => dim.int(1, d)); // dim.dim_value
      });
    }));
}

function attribute(w: Writer, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: wrap non-integer values as { float }`);
    w.int(3, value).int(20, 2); // i, type INT
  } else if (Array.isArray(value)) {
    for (const v of value as readonly number[]) w.int(8, v); // ints
    w.int(20, 7); // type INTS
  } else {
    w.float(2, (value as { float: number }).float).int(20, 1); // f, type FLOAT
  }
}

/** Serialize a graph as an ONNX ModelProto (IR version 8). */
export function encodeModel(g: OnnxGraph): Uint8Array {
  const w = new Writer();
  w.int(1, 8); // ir_version
  w.string(2, 'normgpu-bench'); // producer_name
  for (const [domain, version] of Object.entries(g.opsets ?? { '': 17 })) {
    w.message(8, (o) => { // opset_import
      if (domain) o.string(1, domain);
      o.int(2, version);
    });
  }
  w.message(7, (graph) => { // graph
    g.nodes.forEach((n, i) => graph.message(1, (node) => {
      for (const x of n.inputs) node.string(1, x);
      for (const y of n.outputs) node.string(2, y);
      node.string(3, n.name ?? `${n.op}_${i}`);
      node.string(4, n.op);
      for (const [k, v] of Object.entries(n.attributes ?? {})) node.message(5, (a) => attribute(a, k, v));
      if (n.domain) node.string(7, n.domain);
    }));
    graph.string(2, g.name);
    for (const t of g.initializers ?? []) graph.message(5, (tp) => tensorProto(tp, t));
    for (const v of g.inputs) graph.message(11, (vi) => valueInfo(vi, v));
    for (const v of g.outputs) graph.message(12, (vi) => valueInfo(vi, v));
  });
  return w.finish();
}
