import type { BufferPool } from './buffer-pool';
import { BufferUsage } from '../webgpu-flags';
import type { KernelDef } from '../stage-def';
import { getPipeline } from './pipelines';

/** Packs a uniform struct of 32-bit fields: the u32 fields first, then the f32 ones. */
export function uniformData(u32: readonly number[], f32: readonly number[] = []): ArrayBuffer {
  const data = new ArrayBuffer(Math.ceil((u32.length + f32.length) * 4 / 16) * 16);
  const view = new DataView(data);
  u32.forEach((v, i) => view.setUint32(i * 4, v, true));
  f32.forEach((v, i) => view.setFloat32((u32.length + i) * 4, v, true));
  return data;
}

/** What one op's stages record into: kernels, copies, temporaries. */
export interface Recorder {
  /** A pooled buffer that lives until the work recorded here has been submitted. */
  temp(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer;
  /**
   * A buffer for a result that outlives the recording, written only by recorded commands (never
   * by queue writes): it may be one released earlier in the same stream, since the stream's
   * commands run in order.
   */
  output(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer;
  /** A temporary uniform buffer holding `uniformData(u32, f32)`. */
  uniform(label: string, u32: readonly number[], f32?: readonly number[]): GPUBuffer;
  /**
   * Bind `buffers` to bindings 0.. of the stage and dispatch `workgroups`; a binding the stage
   * declares as `texture` takes a GPUTextureView.
   */
  dispatch(
    def: KernelDef, overrides: Record<string, number | boolean>, buffers: readonly (GPUBuffer | GPUTextureView)[],
    workgroups: readonly number[],
  ): void;
  /** Copy `bytes` from the start of `from` to `to` at `offset`, in order with the dispatches. */
  copy(from: GPUBuffer, to: GPUBuffer, offset: number, bytes: number): void;
  /** Destroy `texture` once the work recorded here has been submitted. */
  destroyAfter(texture: GPUTexture): void;
  /** The op is recorded (its debug group closes). */
  end(): void;
}

/**
 * An open command stream on one encoder: the ops of a batch (normgpu's own encoder, submitted
 * once by `CommandStream.finish` and the backend's flush) or of an `engine.encode` call (the
 * caller's encoder, which the caller submits). Dispatches of consecutive ops share one compute
 * pass; a copy ends it. Temporaries and released buffers are held until the stream's work has
 * been submitted: only then may the pool hand them out again, since queue writes to a reused
 * buffer would otherwise land before this stream's commands read it.
 */
export class CommandStream {
  readonly encoder: GPUCommandEncoder;
  readonly #device: GPUDevice;
  readonly #pool: BufferPool;
  #pass: GPUComputePassEncoder | null = null;
  /** Temporaries of the recorded ops. */
  readonly #temps: GPUBuffer[] = [];
  /** Buffers their owners released while the stream was open, by usage and size class. */
  readonly #released = new Map<string, GPUBuffer[]>();
  readonly #doomed: GPUTexture[] = [];
  /** Called once the stream's work has been submitted. */
  readonly #afterSubmit: (() => void)[] = [];
  /** Ops recorded so far (the backend flushes past a bound). */
  ops = 0;

  constructor(device: GPUDevice, pool: BufferPool, encoder: GPUCommandEncoder) {
    this.#device = device;
    this.#pool = pool;
    this.encoder = encoder;
  }

  /** A recorder for one op labelled `label` (a debug group in captures and profilers). */
  recorder(label: string): Recorder {
    this.ops++;
    let grouped = false;
    const pass = (): GPUComputePassEncoder => {
      this.#pass ??= this.encoder.beginComputePass({ label: 'normgpu:compute' });
      if (!grouped) {
        this.#pass.pushDebugGroup(label);
        grouped = true;
      }
      return this.#pass;
    };
    const temp = (bytes: number, usage: GPUBufferUsageFlags, name: string): GPUBuffer => {
      const b = this.#pool.acquire(bytes, usage, `${label}:${name}`);
      this.#temps.push(b);
      return b;
    };
    return {
      temp,
      output: (bytes, usage, name) => {
        const reused = this.#released.get(`${usage}:${this.#pool.sizeClass(bytes)}`)?.pop();
        if (!reused) return this.#pool.acquire(bytes, usage, name);
        reused.label = name;
        return reused;
      },
      uniform: (name, u32, f32 = []) => {
        const data = uniformData(u32, f32);
        const b = temp(data.byteLength, BufferUsage.UNIFORM | BufferUsage.COPY_DST, name);
        this.#device.queue.writeBuffer(b, 0, data);
        return b;
      },
      dispatch: (def, overrides, buffers, workgroups) => {
        const { pipeline, layout } = getPipeline(this.#device, def, overrides);
        const p = pass();
        p.setPipeline(pipeline);
        p.setBindGroup(0, this.#device.createBindGroup({
          label: `${label}:${def.name}`, layout,
          entries: buffers.map((b, binding) => ({
            binding, resource: def.bindings[binding] === 'texture' ? b as GPUTextureView : { buffer: b as GPUBuffer },
          })),
        }));
        p.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
      },
      copy: (from, to, offset, bytes) => {
        if (grouped) this.#pass!.popDebugGroup();
        grouped = false;
        this.#endPass();
        this.encoder.copyBufferToBuffer(from, 0, to, offset, bytes);
      },
      destroyAfter: (texture) => {
        this.#doomed.push(texture);
      },
      end: () => {
        if (grouped) this.#pass!.popDebugGroup();
      },
    };
  }

  /**
   * Hold `buffer` (released by its owner) until this stream's work has been submitted: queue
   * writes would overtake the recorded commands that still read it, but later outputs of the
   * stream may take it (see Recorder.output), so a chain of ops keeps reusing a few buffers.
   */
  hold(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.#released.get(key);
    if (list) list.push(buffer);
    else this.#released.set(key, [buffer]);
  }

  /** Run `f` once this stream's work has been submitted. */
  afterSubmit(f: () => void): void {
    this.#afterSubmit.push(f);
  }

  /** Close the compute pass; the encoder can then be finished. */
  close(): void {
    this.#endPass();
  }

  /**
   * The stream's work has been submitted (or, for a caller's encoder, the caller says so):
   * temporaries go back to the pool and doomed textures are destroyed.
   */
  retire(): void {
    for (const b of this.#temps.splice(0)) this.#pool.release(b);
    for (const list of this.#released.values()) for (const b of list) this.#pool.release(b);
    this.#released.clear();
    for (const t of this.#doomed.splice(0)) t.destroy();
    for (const f of this.#afterSubmit.splice(0)) f();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }
}

/**
 * A recorder that records nothing and notes each stage and its specialisation: `prepare` runs
 * an op's real recording code through it to learn which pipelines the op will need.
 */
export function pipelineCollector(dummy: GPUBuffer): { recorder: Recorder; kernels: { def: KernelDef; overrides: Record<string, number | boolean> }[] } {
  const kernels: { def: KernelDef; overrides: Record<string, number | boolean> }[] = [];
  return {
    kernels,
    recorder: {
      temp: () => dummy,
      output: () => dummy,
      uniform: () => dummy,
      dispatch: (def, overrides) => { kernels.push({ def, overrides }); },
      copy: () => {},
      destroyAfter: () => {},
      end: () => {},
    },
  };
}
