/**
 * Reuses GPU buffers by usage and size class. Sizes round up to an eighth of their power of
 * two (at most 12.5% slack), so a tensor of a recurring shape finds its buffer again. Reuse is
 * safe as soon as a buffer is released after its last submit: the queue orders later writes
 * and dispatches after earlier ones.
 */
export class BufferPool {
  readonly #device: GPUDevice;
  readonly #free = new Map<string, GPUBuffer[]>();
  #pooledBytes = 0;
  #liveBytes = 0;

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  static sizeClass(bytes: number): number {
    const b = Math.max(256, bytes);
    const step = Math.max(256, 2 ** Math.floor(Math.log2(b)) / 8);
    return Math.ceil(b / step) * step;
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const size = BufferPool.sizeClass(bytes);
    const buffer = this.#free.get(`${usage}:${size}`)?.pop();
    this.#liveBytes += size;
    if (buffer) {
      this.#pooledBytes -= size;
      buffer.label = label;
      return buffer;
    }
    return this.#device.createBuffer({ label, size, usage });
  }

  release(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.#free.get(key) ?? [];
    list.push(buffer);
    this.#free.set(key, list);
    buffer.label = 'normgpu:pooled';
    this.#pooledBytes += buffer.size;
    this.#liveBytes -= buffer.size;
  }

  /** Bytes held by live (acquired) buffers and by free pooled ones. */
  stats(): { liveBytes: number; pooledBytes: number } {
    return { liveBytes: this.#liveBytes, pooledBytes: this.#pooledBytes };
  }

  /** Destroy the free buffers (e.g. under memory pressure); live ones are untouched. */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.#pooledBytes = 0;
  }
}
