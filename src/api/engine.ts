import type { Backend, KernelChoice, NormOperands, Recording } from '../backend';
import { CpuBackend } from '../cpu/backend';
import { NormGpuError, check } from '../errors';
import { WebGpuBackend } from '../gpu/backend';
import { BufferUsage } from '../gpu/flags';
import { acquireDevice, noteCpuFallback, summarize, type AdapterSummary } from '../gpu/device';
import {
  batchNormSpec, checkLayout, checkShape, groupNormSpec, instanceNormSpec, layerNormSpec, momentsSpec, rmsNormSpec,
  type NormSpec, type OpName,
} from '../plan/spec';
import type { GroupView } from '../plan/view';
import type {
  BatchNormOptions, EngineOptions, GroupNormOptions, InstanceNormOptions, LayerNormOptions, Layout,
  FloatData, Moments, MomentsOptions, RmsNormOptions, TensorLike,
} from './options';
import { isTensorHandle } from '../plan/options';
import { checkTensor, Tensor, type Storage } from './tensor';
import { checkEngineOptions, checkFitsBinding, checkFloatData, checkGpuBuffer, checkOptions, toFloat32 } from './validate';
import { TensorTracker } from './tracker';

/** What `engine.explain` returns: the canonical view and the kernels a call would run. */
export interface Explanation {
  op: OpName;
  backend: 'webgpu' | 'cpu';
  view: GroupView;
  kernels: KernelChoice[];
}

/** What `engine.memory()` reports. */
export interface MemoryInfo {
  /**
   * Bytes of GPU buffers in use: live tensors', and those of work not yet submitted (a disposed
   * tensor's buffer returns to the pool when its batch is submitted: at the end of the task or on
   * `flush()`). 0 on the CPU backend.
   */
  liveBytes: number;
  /** Bytes of free GPU buffers kept for reuse, at most `poolBytes` (0 on the CPU backend). */
  pooledBytes: number;
  /** Tensors made by this engine and neither disposed nor garbage-collected (both backends). */
  liveTensors: number;
}

/** Options to make a tensor. */
export interface TensorOptions {
  /** Default: `'channels-first'`. */
  layout?: Layout;
}

/** What an engine does when its GPUDevice is lost (see EngineOptions.onDeviceLost). */
export type DeviceLostPolicy = 'throw' | 'cpu' | 'recreate';

/** @internal How createEngine lets an engine replace a lost device. */
export interface Recovery {
  policy: DeviceLostPolicy;
  /** A backend on a fresh device of normgpu's own. */
  recreate(): Promise<Backend>;
}

/**
 * A normalization engine bound to one backend (one GPUDevice, or the CPU). Ops validate
 * everything before any GPU work, run synchronously as far as the host is concerned (GPU work
 * is queued) and return new tensors; `read()` waits for the results.
 *
 * Events (an EventTarget): `devicelost`, a CustomEvent whose `detail` is `{ reason, message,
 * recovery }`, when the GPUDevice is lost; `devicerestored`, `detail` `{ backend }`, once the
 * engine runs on a fresh device or the CPU backend (policies `'recreate'` and `'cpu'`).
 */
export class Engine extends EventTarget {
  #backend: Backend;
  readonly #tracker: TensorTracker;
  readonly #recovery: Recovery | null;
  #disposed = false;

  /** @internal Use `createEngine`. */
  constructor(backend: Backend, options: { warnLeaks?: boolean; recovery?: Recovery } = {}) {
    super();
    this.#backend = backend;
    this.#tracker = new TensorTracker(options.warnLeaks ?? false);
    this.#recovery = options.recovery ?? null;
    this.#watch(backend);
  }

  /** The backend in use: `'lost'` from a device loss until a recovery (if any) completes. */
  get backend(): 'webgpu' | 'cpu' | 'lost' {
    return this.#backend.lost ? 'lost' : this.#backend.kind;
  }

  /** The adapter (WebGPU backend), or null on the CPU backend. */
  get adapterInfo(): AdapterSummary | null {
    return this.#backend.info;
  }

  /** The GPUDevice in use (WebGPU backend), or null. */
  get device(): GPUDevice | null {
    return this.#backend.device;
  }

  /**
   * @internal The backend, for ops that live in their own modules (image preprocessing, feature
   * scalers, dataset statistics); throws DISPOSED_ENGINE after `dispose()`.
   */
  get internalBackend(): Backend {
    this.#alive();
    return this.#backend;
  }

  /**
   * @internal Every tensor of this engine is made here, ops in other modules included, so that
   * `tidy`, `memory()` and the finalizer of undisposed tensors see it. `origin` names the op.
   */
  internalTensor(storage: Storage, shape: readonly number[], layout: Layout, origin: string): Tensor {
    return this.#tracker.create(this.#backend, storage, shape, layout, origin);
  }

  /**
   * What the engine holds now. Tensors the garbage collector reclaimed without `dispose()` no
   * longer count: their buffers went back to the pool. The CPU backend reports no bytes (host
   * memory is the JS engine's to manage) but counts tensors the same way.
   */
  memory(): MemoryInfo {
    const bytes = this.#backend.memory();
    return { ...bytes, liveTensors: this.#tracker.liveTensors };
  }

  /** Destroy the free pooled GPU buffers now (e.g. under memory pressure); live tensors are untouched. */
  trim(): void {
    this.#backend.trim();
  }

  /**
   * Run `fn` and dispose every tensor this engine made during it except those it returns: a
   * Tensor, or the tensors among the top-level values of a returned array or object (e.g. the
   * result of `moments`). Tidies nest; a kept tensor then belongs to the enclosing tidy. If `fn`
   * throws, its tensors are disposed and the error propagates. Wrapped buffers are never
   * destroyed. `fn` must be synchronous (an async function or a returned promise throws
   * INVALID_ARGUMENT: concurrent async code would mix its tensors in); read results afterwards.
   */
  tidy<T>(fn: () => T): T {
    this.#alive();
    return this.#tracker.tidy(fn);
  }

  /**
   * A tensor holding a copy of `data` (float32; a Float64Array or number[] is converted),
   * shaped `shape` in storage order. Throws TENSOR_TOO_LARGE past one buffer binding of the device.
   */
  tensor(data: FloatData, shape: readonly number[], options: TensorOptions = {}): Tensor {
    this.#alive();
    const opts = checkOptions(options, 'tensor options');
    checkShape(shape);
    const layout = checkLayout(opts.layout);
    const values = checkFloatData(data, 'data');
    const size = shape.reduce((a, b) => a * b, 1);
    check(values.length === size, 'DATA_LENGTH_MISMATCH', `data has ${values.length} values, shape [${shape}] needs ${size}`);
    checkFitsBinding(this.#backend, size * 4, `data of shape [${shape}]`);
    const f32 = toFloat32(values);
    return this.internalTensor(this.#backend.upload(f32), shape, layout, 'tensor');
  }

  /**
   * Wrap an existing GPUBuffer (unmapped, usage STORAGE | COPY_SRC, float32 data from offset 0,
   * within one buffer binding of the device) without a copy. The buffer stays its owner's:
   * `dispose()` never destroys it.
   */
  fromGPUBuffer(buffer: GPUBuffer, shape: readonly number[], options: TensorOptions = {}): Tensor {
    this.#alive();
    check(this.#backend.kind === 'webgpu', 'INVALID_ARGUMENT', 'fromGPUBuffer needs the WebGPU backend');
    const opts = checkOptions(options, 'fromGPUBuffer options');
    checkGpuBuffer(buffer, 'buffer');
    checkShape(shape);
    const layout = checkLayout(opts.layout);
    const size = shape.reduce((a, b) => a * b, 1);
    check(buffer.size >= size * 4, 'DATA_LENGTH_MISMATCH', `buffer of ${buffer.size} bytes is too small for [${shape}] float32`);
    // Bindings take the whole buffer, so it is the buffer's size that must fit.
    check(
      buffer.size <= this.#backend.maxBindingBytes, 'TENSOR_TOO_LARGE',
      `buffer of ${buffer.size} bytes is over the ${this.#backend.maxBindingBytes}-byte limit of one buffer binding on this device`,
    );
    check(
      (buffer.usage & BufferUsage.STORAGE) !== 0 && (buffer.usage & BufferUsage.COPY_SRC) !== 0,
      'INVALID_ARGUMENT', 'a wrapped buffer needs usage STORAGE | COPY_SRC',
    );
    return this.internalTensor({ kind: 'gpu', buffer, owned: false }, shape, layout, 'fromGPUBuffer');
  }

  /** `F.batch_norm`: training normalizes by batch statistics and updates running ones in place. */
  batchNorm(x: Tensor, options: BatchNormOptions = {}): Tensor {
    const spec = batchNormSpec(this.#input(x).shape, x.layout, options);
    return this.#normalize(spec, x, options);
  }

  /** `F.layer_norm` over the trailing `normalizedShape` dims. */
  layerNorm(x: Tensor, options: LayerNormOptions): Tensor {
    return this.#normalize(layerNormSpec(this.#input(x).shape, options), x, options);
  }

  /** `F.rms_norm` over the trailing `normalizedShape` dims. */
  rmsNorm(x: Tensor, options: RmsNormOptions): Tensor {
    return this.#normalize(rmsNormSpec(this.#input(x).shape, options), x, options);
  }

  /** `F.instance_norm` (input statistics per sample and channel). */
  instanceNorm(x: Tensor, options: InstanceNormOptions = {}): Tensor {
    return this.#normalize(instanceNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /** `F.group_norm`, in either layout. */
  groupNorm(x: Tensor, options: GroupNormOptions): Tensor {
    return this.#normalize(groupNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /** `torch.var_mean(x, axes, correction)`: mean and variance with the reduced axes removed. */
  moments(x: Tensor, options: MomentsOptions): Moments {
    const spec = momentsSpec(this.#input(x).shape, options);
    const { mean, variance } = this.#backend.moments(spec, x.storage);
    const shape = spec.statsShape.length ? spec.statsShape : [1];
    return { mean: this.#wrap('moments', mean, shape), variance: this.#wrap('moments', variance, shape) };
  }

  /** The canonical view and kernel choice of a call, without running it. */
  explain(op: OpName, x: Tensor, options: object = {}): Explanation {
    const t = this.#input(x);
    const spec = this.#spec(op, t.shape, t.layout, options);
    return { op, backend: this.#backend.kind, view: spec.view, kernels: this.#backend.describe(spec) };
  }

  /**
   * Compile ahead of time, without blocking the page (createComputePipelineAsync), every GPU
   * pipeline that `op` on a tensor of `shape` in `layout` with `options` will use, so its first
   * call does not stall on shader compilation. Pipelines are per device and never depend on
   * shapes, so one preparation serves every shape with the same options. A call made before
   * (or without) preparing still works. Resolves at once on the CPU backend.
   */
  async prepare(op: OpName, shape: readonly number[], options: object = {}, layout: Layout = 'channels-first'): Promise<void> {
    this.#alive();
    checkShape(shape);
    const spec = this.#spec(op, shape, checkLayout(layout), options);
    const o = options as { weight?: unknown; bias?: unknown };
    await this.#backend.prepare(spec, { weight: o.weight !== undefined, bias: o.bias !== undefined });
  }

  /**
   * Submit the GPU work of the ops issued so far. Ops issued back to back share one command
   * buffer and one submit, made on `read()`, past a bound, or at the end of the current task;
   * call this to start the GPU earlier, e.g. before a long stretch of host work.
   */
  flush(): void {
    this.#alive();
    this.#backend.flush();
  }

  /**
   * Record the GPU work of the ops that `fn` issues into `encoder`, a GPUCommandEncoder of the
   * engine's device that the caller finishes and submits (for instance between the passes of a
   * model), instead of normgpu's own submit. Ops issued earlier are submitted first.
   *
   * Lifetime rules: `fn` runs synchronously and may not `read()` (results exist only after the
   * caller's submit); tensors it returns are valid inputs for later ops and readable once the
   * encoder has been submitted; the temporaries the recorded work uses (uniforms, partial
   * statistics) stay allocated until `release()` of the returned recording, which the caller
   * calls after submitting (forgetting it only keeps them allocated); tensors disposed inside
   * `fn` are also held until then. Recordings do not nest. WebGPU backend only.
   *
   * ```ts
   * const encoder = device.createCommandEncoder();
   * // ... the model's own passes ...
   * const rec = engine.encode(encoder, () => engine.layerNorm(h, { normalizedShape: [768] }));
   * device.queue.submit([encoder.finish()]);
   * rec.release();
   * const y = rec.result;
   * ```
   */
  encode<T>(encoder: GPUCommandEncoder, fn: () => T): Recording<T> {
    this.#alive();
    check(typeof (encoder as { beginComputePass?: unknown } | null)?.beginComputePass === 'function',
      'INVALID_ARGUMENT', 'encode needs a GPUCommandEncoder');
    check(typeof fn === 'function', 'INVALID_ARGUMENT', 'encode needs a function that issues the ops');
    return this.#backend.encode(encoder, fn);
  }

  /** Free pooled memory and, if normgpu made it, the device. Tensors of this engine die too. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#tracker.close();
    this.#backend.dispose();
  }

  /** `dispose()`, for `using engine = await createEngine()`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #spec(op: OpName, shape: readonly number[], layout: Layout, o: object): NormSpec {
    switch (op) {
      case 'batchNorm': return batchNormSpec(shape, layout, o);
      case 'layerNorm': return layerNormSpec(shape, o as LayerNormOptions);
      case 'rmsNorm': return rmsNormSpec(shape, o as RmsNormOptions);
      case 'instanceNorm': return instanceNormSpec(shape, layout, o);
      case 'groupNorm': return groupNormSpec(shape, layout, o as GroupNormOptions);
      case 'moments': return momentsSpec(shape, o as MomentsOptions);
      default: throw new NormGpuError('INVALID_ARGUMENT', `unknown op ${String(op)}`);
    }
  }

  #normalize(spec: NormSpec, x: Tensor, o: { weight?: TensorLike; bias?: TensorLike; runningMean?: TensorLike; runningVar?: TensorLike }): Tensor {
    // Every check passes before host parameters are uploaded, so a throw leaves nothing behind.
    const params = { weight: o.weight, bias: o.bias, runningMean: o.runningMean, runningVar: o.runningVar };
    for (const [name, t] of Object.entries(params)) if (isTensorHandle(t)) this.#input(t as Tensor, name);
    if (spec.updateRunning) checkNotAliased({ input: x, ...params }, ['runningMean', 'runningVar']);
    const temps: Tensor[] = [];
    const storageOf = (t: TensorLike | undefined): Storage | undefined => {
      if (t === undefined) return undefined;
      if (isTensorHandle(t)) return (t as Tensor).storage;
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
      return this.#wrap(spec.op, this.#backend.normalize(spec, operands), x.shape, x.layout);
    } finally {
      for (const t of temps) t.dispose();
    }
  }

  #wrap(op: OpName, storage: Storage, shape: readonly number[], layout: Layout = 'channels-first'): Tensor {
    return this.internalTensor(storage, shape, layout, op);
  }

  #input(x: Tensor, name = 'input'): Tensor {
    this.#alive();
    return checkTensor(this.#backend, x, name);
  }

  #alive(): void {
    check(!this.#disposed, 'DISPOSED_ENGINE', 'the engine was disposed');
    this.#backend.assertUsable();
  }

  #watch(backend: Backend): void {
    backend.onLost = (loss) => this.#deviceLost(backend, loss);
  }

  /**
   * The device of `from` was lost: tell listeners, then move to the policy's replacement.
   * Tensors of the lost device stay dead (their reads reject with DEVICE_LOST); until the
   * replacement is ready, calls throw DEVICE_LOST.
   */
  #deviceLost(from: Backend, loss: { reason: string; message: string }): void {
    if (this.#disposed || from !== this.#backend) return;
    const policy = this.#recovery?.policy ?? 'throw';
    this.dispatchEvent(new CustomEvent('devicelost', { detail: { ...loss, recovery: policy } }));
    if (policy === 'throw') return;
    // A failed recreation (no adapter left) still leaves a working engine.
    const next = policy === 'cpu' ? Promise.resolve<Backend>(new CpuBackend()) : this.#recovery!.recreate().catch(() => new CpuBackend());
    void next.then((backend) => {
      if (this.#disposed) {
        backend.dispose();
        return;
      }
      this.#backend = backend;
      this.#watch(backend);
      this.dispatchEvent(new CustomEvent('devicerestored', { detail: { backend: backend.kind } }));
    });
  }
}

/** The memory behind a tensor: wrappers of one GPUBuffer share it. */
const memoryOf = (t: Tensor): unknown => {
  const s = t.storage;
  return s.kind === 'gpu' ? s.buffer : s.data;
};

/**
 * Operands `written` in place may share memory with no other operand: the backends would read
 * half-updated values (and WebGPU rejects a writable binding that aliases another).
 */
function checkNotAliased(operands: Record<string, TensorLike | undefined>, written: readonly string[]): void {
  const tensors = Object.entries(operands).filter((e): e is [string, Tensor] => e[1] instanceof Tensor);
  for (const w of written) {
    const target = operands[w];
    if (!(target instanceof Tensor)) continue;
    const other = tensors.find(([name, t]) => name !== w && memoryOf(t) === memoryOf(target));
    check(!other, 'ALIASED_OPERANDS', `${w} is updated in place and may not be the same tensor (or GPUBuffer) as ${other?.[0]}`);
  }
}

/**
 * Make an engine. `backend: 'auto'` (default) takes WebGPU when an adapter can be had and the
 * CPU backend otherwise; `'webgpu'` throws WEBGPU_UNAVAILABLE instead of falling back.
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  checkEngineOptions(options);
  const backend = options.backend ?? 'auto';
  check(['auto', 'webgpu', 'cpu'].includes(backend), 'INVALID_ARGUMENT', `backend must be 'auto', 'webgpu' or 'cpu', got ${backend}`);
  const prefer = options.kernels ?? 'auto';
  check(['auto', 'parallel', 'serial'].includes(prefer), 'INVALID_ARGUMENT', `kernels must be 'auto', 'parallel' or 'serial', got ${prefer}`);
  const { poolBytes, warnLeaks } = options;
  const policy = options.onDeviceLost ?? 'throw';
  check(['throw', 'cpu', 'recreate'].includes(policy), 'INVALID_ARGUMENT', `onDeviceLost must be 'throw', 'cpu' or 'recreate', got ${String(policy)}`);
  const powerPreference = options.powerPreference ?? 'high-performance';
  const recovery: Recovery = { policy, recreate: async () => new WebGpuBackend(await acquireDevice(powerPreference), prefer, poolBytes) };
  check(poolBytes === undefined || (typeof poolBytes === 'number' && poolBytes >= 0), 'INVALID_ARGUMENT', `poolBytes must be a number >= 0, got ${poolBytes}`);
  check(warnLeaks === undefined || typeof warnLeaks === 'boolean', 'INVALID_ARGUMENT', `warnLeaks must be a boolean, got ${warnLeaks}`);
  if (backend === 'cpu') return new Engine(new CpuBackend(), { warnLeaks });
  if (options.device) {
    const d = options.device;
    return new Engine(new WebGpuBackend({ device: d, info: summarize(d.adapterInfo), owned: false }, prefer, poolBytes), { warnLeaks, recovery });
  }
  try {
    return new Engine(await recovery.recreate(), { warnLeaks, recovery });
  } catch (e) {
    if (backend === 'auto' && e instanceof NormGpuError && e.code === 'WEBGPU_UNAVAILABLE') {
      noteCpuFallback();
      return new Engine(new CpuBackend(), { warnLeaks });
    }
    throw e;
  }
}
