import type { BufferPool } from './buffer-pool';
import { BufferUsage } from './flags';
import type { KernelDef } from './kernels';
import { getPipeline } from './pipelines';

/** Packs a uniform struct of 32-bit fields: the u32 fields first, then the f32 ones. */
export function uniformData(u32: readonly number[], f32: readonly number[] = []): ArrayBuffer {
  const data = new ArrayBuffer(Math.ceil((u32.length + f32.length) * 4 / 16) * 16);
  const view = new DataView(data);
  u32.forEach((v, i) => view.setUint32(i * 4, v, true));
  f32.forEach((v, i) => view.setFloat32((u32.length + i) * 4, v, true));
  return data;
}

/**
 * Records the stages of one call into one compute pass and one submit. Temporaries come from
 * the pool and return to it right after the submit: the queue orders their reuse after it.
 */
export class Recorder {
  readonly #device: GPUDevice;
  readonly #pool: BufferPool;
  readonly #label: string;
  readonly #encoder: GPUCommandEncoder;
  readonly #pass: GPUComputePassEncoder;
  readonly #temps: GPUBuffer[] = [];

  constructor(device: GPUDevice, pool: BufferPool, label: string) {
    this.#device = device;
    this.#pool = pool;
    this.#label = label;
    this.#encoder = device.createCommandEncoder({ label });
    this.#pass = this.#encoder.beginComputePass({ label });
  }

  /** A pooled buffer that lives until `submit()`. */
  temp(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const b = this.#pool.acquire(bytes, usage, `${this.#label}:${label}`);
    this.#temps.push(b);
    return b;
  }

  /** A temporary uniform buffer holding `uniformData(u32, f32)`. */
  uniform(label: string, u32: readonly number[], f32: readonly number[] = []): GPUBuffer {
    const data = uniformData(u32, f32);
    const b = this.temp(data.byteLength, BufferUsage.UNIFORM | BufferUsage.COPY_DST, label);
    this.#device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /**
   * Bind `buffers` to bindings 0.. of the stage and dispatch `workgroups`; a binding the stage
   * declares as `texture` takes a GPUTextureView.
   */
  dispatch(
    def: KernelDef, overrides: Record<string, number | boolean>, buffers: readonly (GPUBuffer | GPUTextureView)[],
    workgroups: readonly number[],
  ): void {
    const { pipeline, layout } = getPipeline(this.#device, def, overrides);
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, this.#device.createBindGroup({
      label: `${this.#label}:${def.name}`, layout,
      entries: buffers.map((b, binding) => ({
        binding, resource: def.bindings[binding] === 'texture' ? b as GPUTextureView : { buffer: b as GPUBuffer },
      })),
    }));
    this.#pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
  }

  submit(): void {
    this.#pass.end();
    this.#device.queue.submit([this.#encoder.finish()]);
    for (const b of this.#temps) this.#pool.release(b);
  }
}
