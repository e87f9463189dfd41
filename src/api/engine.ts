import type { Backend, KernelChoice, NormOperands } from '../backend';
import { CpuBackend } from '../cpu/backend';
import { NormGpuError, check } from '../errors';
import { WebGpuBackend } from '../gpu/backend';
import { BufferUsage } from '../gpu/flags';
import { acquireDevice, summarize, type AdapterSummary } from '../gpu/device';
import {
  batchNormSpec, checkLayout, checkShape, groupNormSpec, instanceNormSpec, layerNormSpec, momentsSpec, rmsNormSpec,
  type NormSpec, type OpName,
} from '../plan/spec';
import type { GroupView } from '../plan/view';
import type {
  BatchNormOptions, EngineOptions, GroupNormOptions, InstanceNormOptions, LayerNormOptions, Layout,
  Moments, MomentsOptions, RmsNormOptions, TensorLike,
} from './options';
import { checkTensor, Tensor, type Storage } from './tensor';

/** What `engine.explain` returns: the canonical view and the kernels a call would run. */
export interface Explanation {
  op: OpName;
  backend: 'webgpu' | 'cpu';
  view: GroupView;
  kernels: KernelChoice[];
}

/** Options to make a tensor. */
export interface TensorOptions {
  /** Default: `'channels-first'`. */
  layout?: Layout;
}

/**
 * A normalization engine bound to one backend (one GPUDevice, or the CPU). Ops validate
 * everything before any GPU work, run synchronously as far as the host is concerned (GPU work
 * is queued) and return new tensors; `read()` waits for the results.
 */
export class Engine {
  readonly #backend: Backend;
  #disposed = false;

  /** @internal Use `createEngine`. */
  constructor(backend: Backend) {
    this.#backend = backend;
  }

  /** The backend in use. */
  get backend(): 'webgpu' | 'cpu' {
    return this.#backend.kind;
  }

  /** The adapter (WebGPU backend), or null on the CPU backend. */
  get adapterInfo(): AdapterSummary | null {
    return this.#backend instanceof WebGpuBackend ? this.#backend.info : null;
  }

  /** The GPUDevice in use (WebGPU backend), or null. */
  get device(): GPUDevice | null {
    return this.#backend instanceof WebGpuBackend ? this.#backend.device : null;
  }

  /**
   * @internal The backend, for ops that live in their own modules (image preprocessing, feature
   * scalers, dataset statistics); throws DISPOSED_ENGINE after `dispose()`.
   */
  get internalBackend(): Backend {
    this.#alive();
    return this.#backend;
  }

  /** Bytes in live GPU buffers and in the pool (0 and 0 on the CPU backend). */
  memory(): { liveBytes: number; pooledBytes: number } {
    return this.#backend instanceof WebGpuBackend ? this.#backend.pool.stats() : { liveBytes: 0, pooledBytes: 0 };
  }

  /** A tensor holding a copy of `data`, shaped `shape` in storage order. */
  tensor(data: Float32Array | readonly number[], shape: readonly number[], options: TensorOptions = {}): Tensor {
    this.#alive();
    checkShape(shape);
    const layout = checkLayout(options.layout);
    const size = shape.reduce((a, b) => a * b, 1);
    check(data.length === size, 'DATA_LENGTH_MISMATCH', `data has ${data.length} values, shape [${shape}] needs ${size}`);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    return new Tensor(this.#backend, this.#backend.upload(f32), shape, layout);
  }

  /**
   * Wrap an existing GPUBuffer (usage STORAGE | COPY_SRC, float32 data from offset 0) without a
   * copy. The buffer stays its owner's: `dispose()` never destroys it.
   */
  fromGPUBuffer(buffer: GPUBuffer, shape: readonly number[], options: TensorOptions = {}): Tensor {
    this.#alive();
    check(this.#backend.kind === 'webgpu', 'INVALID_ARGUMENT', 'fromGPUBuffer needs the WebGPU backend');
    checkShape(shape);
    const layout = checkLayout(options.layout);
    const size = shape.reduce((a, b) => a * b, 1);
    check(buffer.size >= size * 4, 'DATA_LENGTH_MISMATCH', `buffer of ${buffer.size} bytes is too small for [${shape}] float32`);
    check(
      (buffer.usage & BufferUsage.STORAGE) !== 0 && (buffer.usage & BufferUsage.COPY_SRC) !== 0,
      'INVALID_ARGUMENT', 'a wrapped buffer needs usage STORAGE | COPY_SRC',
    );
    return new Tensor(this.#backend, { kind: 'gpu', buffer, owned: false }, shape, layout);
  }

  /** `F.batch_norm`: training normalizes by batch statistics and updates running ones in place. */
  batchNorm(x: Tensor, options: BatchNormOptions = {}): Tensor {
    const spec = batchNormSpec(this.#input(x).shape, x.layout, options);
    return this.#normalize(spec, x, options);
  }

  /** `F.layer_norm` over the trailing `normalizedShape` dims. */
  layerNorm(x: Tensor, options: LayerNormOptions): Tensor {
    return this.#normalize(layerNormSpec(this.#input(x).shape, options ?? {}), x, options);
  }

  /** `F.rms_norm` over the trailing `normalizedShape` dims. */
  rmsNorm(x: Tensor, options: RmsNormOptions): Tensor {
    return this.#normalize(rmsNormSpec(this.#input(x).shape, options ?? {}), x, options);
  }

  /** `F.instance_norm` (input statistics per sample and channel). */
  instanceNorm(x: Tensor, options: InstanceNormOptions = {}): Tensor {
    return this.#normalize(instanceNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /** `F.group_norm`, in either layout. */
  groupNorm(x: Tensor, options: GroupNormOptions): Tensor {
    return this.#normalize(groupNormSpec(this.#input(x).shape, x.layout, options ?? {}), x, options);
  }

  /** `torch.var_mean(x, axes, correction)`: mean and variance with the reduced axes removed. */
  moments(x: Tensor, options: MomentsOptions): Moments {
    const spec = momentsSpec(this.#input(x).shape, options);
    const { mean, variance } = this.#backend.moments(spec, x.storage);
    const shape = spec.statsShape.length ? spec.statsShape : [1];
    return { mean: this.#wrap(mean, shape), variance: this.#wrap(variance, shape) };
  }

  /** The canonical view and kernel choice of a call, without running it. */
  explain(op: OpName, x: Tensor, options: object = {}): Explanation {
    const spec = this.#spec(op, this.#input(x), options);
    return { op, backend: this.backend, view: spec.view, kernels: this.#backend.describe(spec) };
  }

  /** Free pooled memory and, if normgpu made it, the device. Tensors of this engine die too. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#backend.dispose();
  }

  #spec(op: OpName, x: Tensor, o: object): NormSpec {
    switch (op) {
      case 'batchNorm': return batchNormSpec(x.shape, x.layout, o);
      case 'layerNorm': return layerNormSpec(x.shape, o as LayerNormOptions);
      case 'rmsNorm': return rmsNormSpec(x.shape, o as RmsNormOptions);
      case 'instanceNorm': return instanceNormSpec(x.shape, x.layout, o);
      case 'groupNorm': return groupNormSpec(x.shape, x.layout, o as GroupNormOptions);
      case 'moments': return momentsSpec(x.shape, o as MomentsOptions);
      default: throw new NormGpuError('INVALID_ARGUMENT', `unknown op ${String(op)}`);
    }
  }

  #normalize(spec: NormSpec, x: Tensor, o: { weight?: TensorLike; bias?: TensorLike; runningMean?: TensorLike; runningVar?: TensorLike }): Tensor {
    // Every check passes before host parameters are uploaded, so a throw leaves nothing behind.
    const params = { weight: o.weight, bias: o.bias, runningMean: o.runningMean, runningVar: o.runningVar };
    for (const [name, t] of Object.entries(params)) if (t instanceof Tensor) this.#input(t, name);
    const temps: Tensor[] = [];
    const storageOf = (t: TensorLike | undefined): Storage | undefined => {
      if (t === undefined) return undefined;
      if (t instanceof Tensor) return t.storage;
      const tensor = this.tensor(t instanceof Float32Array ? t : Float32Array.from(t), [t.length]);
      temps.push(tensor);
      return tensor.storage;
    };
    try {
      const operands: NormOperands = {
        x: x.storage,
        weight: storageOf(params.weight),
        bias: storageOf(params.bias),
        runningMean: storageOf(params.runningMean),
        runningVar: storageOf(params.runningVar),
      };
      return this.#wrap(this.#backend.normalize(spec, operands), x.shape, x.layout);
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  #wrap(storage: Storage, shape: readonly number[], layout: Layout = 'channels-first'): Tensor {
    return new Tensor(this.#backend, storage, shape, layout);
  }

  #input(x: Tensor, name = 'input'): Tensor {
    this.#alive();
    return checkTensor(this.#backend, x, name);
  }

  #alive(): void {
    check(!this.#disposed, 'DISPOSED_ENGINE', 'the engine was disposed');
  }
}

/**
 * Make an engine. `backend: 'auto'` (default) takes WebGPU when an adapter can be had and the
 * CPU backend otherwise; `'webgpu'` throws WEBGPU_UNAVAILABLE instead of falling back.
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const backend = options.backend ?? 'auto';
  check(['auto', 'webgpu', 'cpu'].includes(backend), 'INVALID_ARGUMENT', `backend must be 'auto', 'webgpu' or 'cpu', got ${backend}`);
  const prefer = options.kernels ?? 'auto';
  check(['auto', 'parallel', 'serial'].includes(prefer), 'INVALID_ARGUMENT', `kernels must be 'auto', 'parallel' or 'serial', got ${prefer}`);
  if (backend === 'cpu') return new Engine(new CpuBackend());
  if (options.device) {
    const d = options.device;
    return new Engine(new WebGpuBackend({ device: d, info: summarize(d.adapterInfo), owned: false }, prefer));
  }
  try {
    return new Engine(new WebGpuBackend(await acquireDevice(options.powerPreference ?? 'high-performance'), prefer));
  } catch (e) {
    if (backend === 'auto' && e instanceof NormGpuError && e.code === 'WEBGPU_UNAVAILABLE') return new Engine(new CpuBackend());
    throw e;
  }
}
