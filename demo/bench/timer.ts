/**
 * GPU timing shared by every GPU contender and the bandwidth ceilings: a call is bracketed by
 * two empty compute passes that write timestamps (when the device has `timestamp-query`), so
 * the figure is GPU time from the moment the queue reaches the call until its work is done;
 * without timestamps it is wall time from submit to `onSubmittedWorkDone`. Both are recorded.
 *
 * Flag values come from normgpu's own table: Node has no GPUBufferUsage globals until Dawn loads.
 */
import { BufferUsage, MAP_READ } from '../../src/webgpu-flags';

export const Usage = BufferUsage;

export interface Timing {
  /** GPU ms from timestamps, or wall ms when the device has no timestamps. */
  ms: number;
  /** Wall ms from before the call to onSubmittedWorkDone. */
  wallMs: number;
  method: 'timestamp' | 'wall';
}

export class GpuTimer {
  readonly device: GPUDevice;
  readonly timestamps: boolean;
  readonly #querySet?: GPUQuerySet;
  readonly #resolve?: GPUBuffer;
  readonly #readback?: GPUBuffer;
  /** Timestamps that came back unusable (zero or reversed) and fell back to wall time. */
  rejected = 0;

  constructor(device: GPUDevice, useTimestamps = true) {
    this.device = device;
    this.timestamps = useTimestamps && device.features.has('timestamp-query');
    if (this.timestamps) {
      this.#querySet = device.createQuerySet({ type: 'timestamp', count: 2, label: 'bench:timestamps' });
      this.#resolve = device.createBuffer({ size: 16, usage: Usage.QUERY_RESOLVE | Usage.COPY_SRC, label: 'bench:resolve' });
      this.#readback = device.createBuffer({ size: 16, usage: Usage.MAP_READ | Usage.COPY_DST, label: 'bench:readback' });
    }
  }

  #marker(index: 0 | 1): GPUCommandEncoder {
    const encoder = this.device.createCommandEncoder({ label: `bench:marker${index}` });
    const timestampWrites: GPUComputePassTimestampWrites = index === 0
      ? { querySet: this.#querySet!, beginningOfPassWriteIndex: 0 }
      : { querySet: this.#querySet!, endOfPassWriteIndex: 1 };
    encoder.beginComputePass({ label: `bench:marker${index}`, timestampWrites }).end();
    return encoder;
  }

  /**
   * Time one call. `run` enqueues the work (and may await the library's own promise);
   * `flush` submits whatever the library still holds in an open command encoder.
   */
  async time(run: () => unknown, flush?: () => void): Promise<Timing> {
    const t0 = performance.now();
    if (this.timestamps) this.device.queue.submit([this.#marker(0).finish()]);
    await run();
    flush?.();
    if (this.timestamps) {
      const encoder = this.#marker(1);
      encoder.resolveQuerySet(this.#querySet!, 0, 2, this.#resolve!, 0);
      encoder.copyBufferToBuffer(this.#resolve!, 0, this.#readback!, 0, 16);
      this.device.queue.submit([encoder.finish()]);
    }
    await this.device.queue.onSubmittedWorkDone();
    const wallMs = performance.now() - t0;
    if (!this.timestamps) return { ms: wallMs, wallMs, method: 'wall' };
    await this.#readback!.mapAsync(MAP_READ);
    const [begin, end] = new BigUint64Array(this.#readback!.getMappedRange().slice(0));
    this.#readback!.unmap();
    const ms = Number(end - begin) / 1e6;
    // Quantized or missing timestamps: keep the wall figure rather than a wrong one.
    if (!(end > begin) || ms > wallMs + 1) {
      this.rejected++;
      return { ms: wallMs, wallMs, method: 'wall' };
    }
    return { ms, wallMs, method: 'timestamp' };
  }

  destroy(): void {
    this.#querySet?.destroy();
    this.#resolve?.destroy();
    this.#readback?.destroy();
  }
}

/** Wall-clock timing of a host call (the CPU contender, and the readback column). */
export async function timeWall(run: () => unknown): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
