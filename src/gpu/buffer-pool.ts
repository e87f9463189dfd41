/**
 * Default cap on free pooled bytes: 256 MiB. It holds a working set of the largest tensors a
 * browser's default limits allow (`maxBufferSize` 256 MiB, `maxStorageBufferBindingSize`
 * 128 MiB: an input and its output) so steady loops reuse instead of reallocating, while an idle
 * engine keeps no more GPU memory than a tab can reasonably spare (integrated and mobile GPUs
 * share system RAM).
 */
export const DEFAULT_POOL_BYTES = 256 * 2 ** 20;

/**
 * Reuses GPU buffers by usage and size class. Sizes round up to an eighth of their power of
 * two (at most 12.5% slack, never above what one binding or buffer may hold), so a tensor of a recurring shape finds
 * its buffer again. Reuse is safe as soon as a buffer is released after its last submit: the
 * queue orders later writes and dispatches after earlier ones; likewise `destroy()` waits for
 * the work already submitted.
 *
 * Free buffers are capped at `capBytes`: a release beyond it destroys the least recently
 * released ones first, and a buffer larger than the cap is destroyed instead of pooled.
 */
export class BufferPool {
  readonly #device: GPUDevice;
  /** The largest size class: a buffer that fits a binding must stay bindable once rounded. */
  readonly #maxClass: number;
  readonly #cap: number;
  readonly #free = new Map<string, GPUBuffer[]>();
  /** Free buffers in release order (oldest first), with their `#free` key: the eviction order. */
  readonly #released = new Map<GPUBuffer, string>();
  #pooledBytes = 0;
  #liveBytes = 0;
  #closed = false;

  /** `capBytes`: the most free bytes kept for reuse (0 disables pooling). */
  constructor(device: GPUDevice, capBytes = DEFAULT_POOL_BYTES) {
    this.#device = device;
    this.#maxClass = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
    this.#cap = capBytes;
  }

  /** The size a request of `bytes` is allocated at. */
  sizeClass(bytes: number): number {
    const b = Math.max(256, bytes);
    const step = Math.max(256, 2 ** Math.floor(Math.log2(b)) / 8);
    // Near the limit the class would exceed what createBuffer allows; the request itself may not.
    return Math.max(bytes, Math.min(Math.ceil(b / step) * step, this.#maxClass));
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const size = this.sizeClass(bytes);
    const buffer = this.#free.get(`${usage}:${size}`)?.pop();
    this.#liveBytes += size;
    if (buffer) {
      this.#released.delete(buffer);
      this.#pooledBytes -= size;
      buffer.label = label;
      return buffer;
    }
    return this.#device.createBuffer({ label, size, usage });
  }

  /** Take back an acquired buffer: pool it, evicting older free ones past the cap, or destroy it. */
  release(buffer: GPUBuffer): void {
    this.#liveBytes -= buffer.size;
    if (this.#closed || buffer.size > this.#cap) {
      buffer.destroy();
      return;
    }
    while (this.#pooledBytes + buffer.size > this.#cap) this.#evictOldest();
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.#free.get(key) ?? [];
    list.push(buffer);
    this.#free.set(key, list);
    this.#released.set(buffer, key);
    buffer.label = 'normgpu:pooled';
    this.#pooledBytes += buffer.size;
  }

  /** Destroy an acquired buffer that must not be reused (e.g. its map failed). */
  discard(buffer: GPUBuffer): void {
    this.#liveBytes -= buffer.size;
    buffer.destroy();
  }

  /** Bytes held by live (acquired) buffers and by free pooled ones. */
  stats(): { liveBytes: number; pooledBytes: number } {
    return { liveBytes: this.#liveBytes, pooledBytes: this.#pooledBytes };
  }

  /** Destroy the free buffers (e.g. under memory pressure); live ones are untouched. */
  trim(): void {
    for (const b of this.#released.keys()) b.destroy();
    this.#free.clear();
    this.#released.clear();
    this.#pooledBytes = 0;
  }

  /** Trim, and destroy every buffer released from now on (the engine was disposed). */
  close(): void {
    this.#closed = true;
    this.trim();
  }

  #evictOldest(): void {
    const [buffer, key] = this.#released.entries().next().value!;
    // Lists fill in release order and give back their newest, so the oldest is first.
    this.#free.get(key)!.shift();
    this.#released.delete(buffer);
    this.#pooledBytes -= buffer.size;
    buffer.destroy();
  }
}
