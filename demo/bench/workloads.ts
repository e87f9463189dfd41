/**
 * The benchmark's workloads (issue 4): BatchNorm training and inference, LayerNorm,
 * InstanceNorm, GroupNorm (32 groups) and RMSNorm on conv activations in both layouts, plus
 * LayerNorm / RMSNorm over the last dim of transformer-shaped activations. Also the seeded
 * data every contender gets, byte for byte.
 */

export type OpKind = 'bnTrain' | 'bnEval' | 'layerNorm' | 'instanceNorm' | 'groupNorm' | 'rmsNorm';
/** NCHW / NHWC: a 4-D activation [N, C, H, W] stored channels-first / channels-last; rows: [rows, D]. */
export type LayoutKind = 'NCHW' | 'NHWC' | 'rows';
/** `default` runs in `npm run bench`; `full` only with `--full`. */
export type Tier = 'default' | 'full';

export interface Workload {
  id: string;
  op: OpKind;
  layout: LayoutKind;
  /** Logical shape: [N, C, H, W] for NCHW/NHWC, [rows, D] for rows. */
  dims: readonly number[];
  /** Shape in storage order ([N, H, W, C] for NHWC). */
  storage: readonly number[];
  numel: number;
  /** Bytes of one read of the input plus one write of the output (parameters are negligible). */
  bytes: number;
  tier: Tier;
  /** Timed iterations (at least 10; 5 at the largest shape). */
  iterations: number;
}

export const OP_LABEL: Record<OpKind, string> = {
  bnTrain: 'BatchNorm train',
  bnEval: 'BatchNorm eval',
  layerNorm: 'LayerNorm',
  instanceNorm: 'InstanceNorm',
  groupNorm: 'GroupNorm-32',
  rmsNorm: 'RMSNorm',
};

export const GROUPS = 32;
export const EPS = 1e-5;
export const MOMENTUM = 0.1;

const CONV_OPS: readonly OpKind[] = ['bnTrain', 'bnEval', 'layerNorm', 'instanceNorm', 'groupNorm', 'rmsNorm'];
const CONV_SHAPES: readonly { dims: number[]; tier: Tier }[] = [
  { dims: [8, 64, 56, 56], tier: 'default' },
  { dims: [16, 128, 56, 56], tier: 'default' },
  { dims: [32, 64, 112, 112], tier: 'full' },
];
const ROW_SHAPES: readonly number[][] = [[2048, 768], [512, 4096]];

const product = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

export function makeWorkload(op: OpKind, layout: LayoutKind, dims: readonly number[], tier: Tier = 'default', iterations?: number): Workload {
  const storage = layout === 'NHWC' ? [dims[0], dims[2], dims[3], dims[1]] : [...dims];
  const numel = product(dims);
  const id = `${op}/${layout}/${dims.join('x')}`;
  const largest = numel >= 16_000_000;
  return { id, op, layout, dims, storage, numel, bytes: numel * 8, tier, iterations: iterations ?? (largest ? 5 : 10) };
}

/** Every workload of the suite, in run order (`full` ones last). */
export function allWorkloads(): Workload[] {
  const out: Workload[] = [];
  for (const { dims, tier } of CONV_SHAPES) {
    for (const layout of ['NCHW', 'NHWC'] as const) {
      for (const op of CONV_OPS) out.push(makeWorkload(op, layout, dims, tier));
    }
  }
  for (const dims of ROW_SHAPES) {
    for (const op of ['layerNorm', 'rmsNorm'] as const) out.push(makeWorkload(op, 'rows', dims));
  }
  return out.sort((a, b) => Number(a.tier === 'full') - Number(b.tier === 'full'));
}

/** The tiny suite of the demo's "quick" run and the e2e test: every op, both layouts, one small shape. */
export function quickWorkloads(iterations = 10): Workload[] {
  const out: Workload[] = [];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const op of CONV_OPS) out.push(makeWorkload(op, layout, [2, 64, 16, 16], 'default', iterations));
  }
  for (const op of ['layerNorm', 'rmsNorm'] as const) out.push(makeWorkload(op, 'rows', [256, 768], 'default', iterations));
  return out;
}

export function describeShape(w: Workload): string {
  return w.layout === 'rows' ? `[${w.dims.join(',')}]` : `[${w.dims.join(',')}] ${w.layout}`;
}

/** The inputs of one workload, in storage order; the same arrays go to every contender. */
export interface WorkloadData {
  x: Float32Array;
  /** Per channel (BN/IN/GN), elementwise over the normalized dims (LN/RMS). */
  weight: Float32Array;
  /** Absent for RMSNorm. */
  bias?: Float32Array;
  /** BatchNorm only: the running statistics before the call. */
  runningMean?: Float32Array;
  runningVar?: Float32Array;
  /** Channels (BN/IN/GN) or normalized elements (LN/RMS). */
  paramLength: number;
}

/** Deterministic generator (mulberry32): every run and contender sees the same data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The normalized (LN/RMS) element count of a workload: everything but the batch for 4-D, D for rows. */
export function normalizedLength(w: Workload): number {
  return w.layout === 'rows' ? w.dims[1] : w.numel / w.dims[0];
}

export function channelCount(w: Workload): number {
  return w.layout === 'rows' ? w.dims[1] : w.dims[1];
}

/** The affine parameters every contender gets for workload `w` (makeData). */
export interface ParamLayout {
  /** One weight (and bias) per normalized element (LN/RMS); else one per channel. */
  elementwise: boolean;
  /** Whether a bias is passed (all but RMSNorm). */
  bias: boolean;
  /** Floats in the weight (and the bias). */
  length: number;
}

export function paramLayout(w: Workload): ParamLayout {
  const elementwise = w.op === 'layerNorm' || w.op === 'rmsNorm';
  return { elementwise, bias: w.op !== 'rmsNorm', length: elementwise ? normalizedLength(w) : channelCount(w) };
}

/** A workload's access floor as the ceilings.ts kernels whose times add up to it. */
export interface AccessFloor {
  /** Read-only passes over x for the statistics (0 or 1). */
  read: 0 | 1;
  /** The pass that reads x and writes y. */
  apply: 'copy' | 'scale' | 'affine';
}

/**
 * The memory accesses workload `w` cannot avoid, as kernels of ceilings.ts: the table's floor
 * is the sum of their times, each in the faster of its two shapes on the run's adapter.
 * - Statistics from the data must be complete before the first output: one read pass over x,
 *   unless a group fits on chip, as a row of the row workloads (at most 4096 floats) does in
 *   one workgroup, which then applies from what it read. The conv workloads all count the
 *   read (an InstanceNorm NCHW plane, H·W floats, could fit too: a floor of one copy).
 *   BatchNorm eval's statistics are the running ones: no read.
 * - The apply reads x and writes y. A per-channel weight and bias are a few floats that stay
 *   cached, so that pass costs a copy; an elementwise weight adds a vec4 load per vec4
 *   (scale), an elementwise bias one more (affine).
 */
export function accessFloor(w: Workload): AccessFloor {
  const p = paramLayout(w);
  const read = w.op === 'bnEval' || w.layout === 'rows' ? 0 : 1;
  return { read, apply: !p.elementwise ? 'copy' : p.bias ? 'affine' : 'scale' };
}

/**
 * Activations with a per-channel offset and scale (so that statistics differ per group) plus
 * roughly Gaussian noise, and affine parameters near (1, 0).
 */
export function makeData(w: Workload, seed = 1234): WorkloadData {
  const r = rng(seed);
  const c = channelCount(w);
  const offset = Float32Array.from({ length: c }, () => 4 * r() - 2);
  const scale = Float32Array.from({ length: c }, () => 0.5 + 2 * r());
  const x = new Float32Array(w.numel);
  // Channel of storage index i: NCHW (i / HW) % C; NHWC and rows: i % C.
  const hw = w.layout === 'NCHW' ? w.dims[2] * w.dims[3] : 1;
  for (let i = 0; i < x.length; i++) {
    const ch = hw === 1 ? i % c : Math.floor(i / hw) % c;
    const g = r() + r() + r() - 1.5; // variance 1/4
    x[i] = offset[ch] + scale[ch] * 2 * g;
  }
  const { length: paramLength, bias: hasBias } = paramLayout(w);
  const weight = Float32Array.from({ length: paramLength }, () => 0.75 + 0.5 * r());
  const bias = hasBias ? Float32Array.from({ length: paramLength }, () => r() - 0.5) : undefined;
  const data: WorkloadData = { x, weight, bias, paramLength };
  if (w.op === 'bnTrain' || w.op === 'bnEval') {
    data.runningMean = Float32Array.from(offset, (v) => v + 0.1 * (r() - 0.5));
    data.runningVar = Float32Array.from(scale, (v) => v * v * (0.9 + 0.2 * r()));
  }
  return data;
}
