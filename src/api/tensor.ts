import { NormGpuError, check } from '../errors';
import { sameMemory, type Storage, type TensorOwner } from '../backend';
import { toHalfBits, type DType } from '../half';
import type { Layout } from './options';
import type { TensorTracker } from './tracker';

export type { Storage, TensorOwner } from '../backend';

// `using` needs Symbol.dispose, which older runtimes lack: the standard polyfill, under the
// registered symbol Node itself uses, so it agrees with other polyfills.
(Symbol as { dispose?: symbol }).dispose ??= Symbol.for('nodejs.dispose');

/**
 * A float32 or float16 tensor owned by one engine. The shape is in storage order (a channels-last image
 * batch is `[N, H, W, C]`); `layout` says which axis holds the channels.
 *
 * Free it with `dispose()`, a `using` declaration or `engine.tidy()`. A tensor the garbage
 * collector reclaims undisposed gives its memory back too, but only whenever the collector runs.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly layout: Layout;
  /** Number of elements. */
  readonly size: number;
  /** Element type: float16 tensors hold IEEE halves, two per 4-byte word of their buffer. */
  readonly dtype: DType;
  /** @internal */ readonly owner: TensorOwner;
  #storage: Storage | null;
  readonly #tracker: TensorTracker | undefined;

  /** @internal Made by an engine (its TensorTracker): use `engine.tensor` or `engine.fromGPUBuffer`. */
  constructor(owner: TensorOwner, storage: Storage, shape: readonly number[], layout: Layout, tracker?: TensorTracker) {
    this.owner = owner;
    this.#tracker = tracker;
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.layout = layout;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.dtype = storage.dtype ?? 'float32';
  }

  /** @internal The live storage; throws DISPOSED_TENSOR after `dispose()`. */
  get storage(): Storage {
    check(this.#storage, 'DISPOSED_TENSOR', `tensor [${this.shape}] was disposed`);
    return this.#storage;
  }

  /**
   * @internal An op rewrote this tensor's memory in place: `storage` is the same memory carrying
   * that op's fault, so reads reject with a fault of the rewrite too.
   */
  rewritten(storage: Storage): void {
    if (!sameMemory(this.storage, storage)) throw new Error('internal: a rewrite must keep the tensor\'s memory');
    this.#storage = storage;
  }

  /** True once `dispose()` ran. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /**
   * The GPU buffer holding the data (WebGPU backend only); valid until `dispose()`, and only
   * while the tensor stays reachable: a collected tensor's buffer returns to the pool for reuse.
   * Taking it submits normgpu's pending work first, so another library may read it right away.
   */
  get buffer(): GPUBuffer {
    const s = this.storage;
    if (s.kind !== 'gpu') throw new NormGpuError('INVALID_ARGUMENT', 'a CPU-backend tensor has no GPUBuffer');
    this.owner.flush();
    return s.buffer;
  }

  /** Copy the values to a new Float32Array, whatever the dtype (waits for the GPU). */
  read(): Promise<Float32Array> {
    try {
      return this.owner.readStorage(this.storage, this.size);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The IEEE half bits of a float16 tensor (INVALID_DTYPE for float32), as ONNX Runtime Web holds float16. */
  async readBits(): Promise<Uint16Array> {
    check(this.dtype === 'float16', 'INVALID_DTYPE', `readBits needs a float16 tensor, this one is ${this.dtype}`);
    return toHalfBits(await this.read());
  }

  /** Release the memory (a wrapped GPUBuffer is left to its owner). Idempotent. */
  dispose(): void {
    const storage = this.#storage;
    if (!storage) return;
    this.#storage = null;
    this.#tracker?.disposed(this);
    this.owner.releaseStorage(storage);
  }

  /** `dispose()`, for `using x = engine.tensor(...)`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Check that `x` is a live tensor of `owner` (the engine's backend); `name` appears in the error. */
export function checkTensor(owner: TensorOwner, x: unknown, name = 'input'): Tensor {
  check(x instanceof Tensor, 'INVALID_ARGUMENT', `${name} must be a Tensor`);
  check(!x.disposed, 'DISPOSED_TENSOR', `${name} tensor [${x.shape}] was disposed`);
  x.owner.assertUsable();
  check(x.owner === owner, 'FOREIGN_TENSOR', `${name} tensor belongs to another engine`);
  return x;
}
