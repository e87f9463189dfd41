import { NormGpuError, check } from '../errors';
import type { Layout } from './options';

/** Where a tensor's floats live: host memory (CPU backend) or a GPU buffer (WebGPU backend). */
export type Storage =
  | { readonly kind: 'cpu'; readonly data: Float32Array }
  | { readonly kind: 'gpu'; readonly buffer: GPUBuffer; readonly owned: boolean };

/** What a tensor needs from the engine that made it. */
export interface TensorOwner {
  readStorage(storage: Storage, size: number): Promise<Float32Array>;
  releaseStorage(storage: Storage): void;
}

/**
 * A float32 tensor owned by one engine. The shape is in storage order (a channels-last image
 * batch is `[N, H, W, C]`); `layout` says which axis holds the channels.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly layout: Layout;
  /** Number of elements. */
  readonly size: number;
  /** @internal */ readonly owner: TensorOwner;
  #storage: Storage | null;

  /** @internal Made by an engine: use `engine.tensor` or `engine.fromGPUBuffer`. */
  constructor(owner: TensorOwner, storage: Storage, shape: readonly number[], layout: Layout) {
    this.owner = owner;
    this.#storage = storage;
    this.shape = Object.freeze([...shape]);
    this.layout = layout;
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  /** @internal The live storage; throws DISPOSED_TENSOR after `dispose()`. */
  get storage(): Storage {
    check(this.#storage, 'DISPOSED_TENSOR', `tensor [${this.shape}] was disposed`);
    return this.#storage;
  }

  /** True once `dispose()` ran. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /** The GPU buffer holding the data (WebGPU backend only); valid until `dispose()`. */
  get buffer(): GPUBuffer {
    const s = this.storage;
    if (s.kind !== 'gpu') throw new NormGpuError('INVALID_ARGUMENT', 'a CPU-backend tensor has no GPUBuffer');
    return s.buffer;
  }

  /** Copy the values to a new Float32Array (waits for the GPU). */
  read(): Promise<Float32Array> {
    return this.owner.readStorage(this.storage, this.size);
  }

  /** Release the memory (a wrapped GPUBuffer is left to its owner). Idempotent. */
  dispose(): void {
    if (this.#storage) this.owner.releaseStorage(this.#storage);
    this.#storage = null;
  }
}

/** Check that `x` is a live tensor of `owner` (the engine's backend); `name` appears in the error. */
export function checkTensor(owner: TensorOwner, x: unknown, name = 'input'): Tensor {
  check(x instanceof Tensor, 'INVALID_ARGUMENT', `${name} must be a Tensor`);
  check(!x.disposed, 'DISPOSED_TENSOR', `${name} tensor [${x.shape}] was disposed`);
  check(x.owner === owner, 'FOREIGN_TENSOR', `${name} tensor belongs to another engine`);
  return x;
}
