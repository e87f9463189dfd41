import type { Backend, KernelChoice, NormOperands, Recording } from '../backend';
import { CpuBackend } from '../cpu/backend';
import { NormGpuError, check } from '../errors';
import { WebGpuBackend } from '../gpu/backend';
import { BufferUsage } from '../webgpu-flags';
import { acquireDevice, noteCpuFallback, summarize, type AdapterSummary } from '../gpu/device';
import {
  batchNormSpec, checkDtype, checkLayout, checkShape, epilogueSpec, groupNormSpec, instanceNormSpec, layerNormSpec, momentsSpec,
  rmsNormSpec, type NormSpec, type OpName,
} from '../plan/spec';
import { storageBytes, toHalfBits, type DType } from '../half';
import { groupCount, type GroupView } from '../plan/view';
import {
  checkSaved, gradSpec, gradTotal, type BackwardOptions, type GradSpec, type NormOp, type NormOptionsOf, type SavedStats,
} from '../plan/grad';
import { totalTraffic, type AffineOperands, type Traffic } from '../plan/traffic';
import { TuningTable, type TuningChoice, type TuningJSON } from '../plan/tuning';
import { tunerConfig } from './tuning';
import type {
  BatchNormOptions, EngineOptions, GroupNormOptions, InstanceNormOptions, LayerNormOptions, Layout,
  EpilogueOptions, FloatData, Moments, MomentsOptions, RmsNormOptions, TensorLike,
} from './options';
import { isTensorHandle } from '../plan/options';
import { checkTensor, Tensor, type Storage } from './tensor';
import { checkEngineOptions, checkFitsBinding, checkFloatData, checkGpuBuffer, checkOptions, describe, toFloat32 } from './validate';
import { TensorTracker } from './tracker';

/**
 * What `engine.explain` returns: the canonical view, the kernels a call would run with each
 * stage's bytes and dispatches, and the plan's totals against one read of x and one write of
 * the result (`traffic.ratio` 1 is the traffic of a copy; rules in src/plan/traffic.ts).
 */
export interface Explanation {
  op: OpName;
  backend: 'webgpu' | 'cpu';
  view: GroupView;
  kernels: KernelChoice[];
  traffic: Traffic;
  /**
   * The kernel family the call plans with and why (autotuning): measured, imported, being
   * measured, or untuned; null when `kernels` forces a family or on the CPU backend.
   */
  tuning: TuningChoice | null;
}

/** What `engine.normBackward` returns: the gradients its output mask asked for. */
export interface Gradients {
  dx?: Tensor;
  dweight?: Tensor;
  dbias?: Tensor;
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
  /** Element type. Default: `'float32'`. */
  dtype?: DType;
}

/** What a normalization returns with `returnSum: true`: the output and x + residual. */
export interface NormWithSum {
  y: Tensor;
  sum: Tensor;
}

/** Float16Array where the runtime has it. */
const Float16ArrayCtor = (globalThis as { Float16Array?: new (n: number) => ArrayLike<number> }).Float16Array;

/** Options to wrap a GPUBuffer. */
export interface WrapOptions extends TensorOptions {
  /**
   * Called once when the tensor is disposed or garbage-collected, after normgpu's work that
   * reads the buffer has been submitted: from then on its owner may reuse or destroy it.
   * Default: none.
   */
  onRelease?: () => void;
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
  readonly #tuning: TuningTable;
  #disposed = false;

  /** @internal Use `createEngine`. */
  constructor(backend: Backend, options: { warnLeaks?: boolean; recovery?: Recovery; tuning?: TuningTable } = {}) {
    super();
    this.#backend = backend;
    this.#tracker = new TensorTracker(options.warnLeaks ?? false);
    this.#recovery = options.recovery ?? null;
    this.#tuning = options.tuning ?? new TuningTable();
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
   * Keep `tensor` past the tidy scopes open now (as `tf.keep`): it stays alive until its own
   * `dispose()`. Modules keep their state (gradients, running statistics) this way, so a
   * training step may run inside `tidy`. Returns `tensor`.
   */
  keep(tensor: Tensor): Tensor {
    this.#alive();
    this.#tracker.keep(checkTensor(this.#backend, tensor, 'tensor'));
    return tensor;
  }


  /**
   * A tensor holding a copy of `data`, shaped `shape` in storage order. float32 (default): a
   * Float32Array, or a Float64Array or number[] converted. `dtype: 'float16'`: those rounded
   * to the nearest half (ties to even), or a Uint16Array of IEEE half bits (as ONNX Runtime
   * Web holds float16), or a Float16Array where the runtime has one. Throws TENSOR_TOO_LARGE
   * past one buffer binding of the device.
   */
  tensor(data: FloatData | Uint16Array, shape: readonly number[], options: TensorOptions = {}): Tensor {
    this.#alive();
    const opts = checkOptions(options, 'tensor options');
    checkShape(shape);
    const layout = checkLayout(opts.layout);
    const dtype = checkDtype(opts.dtype, 'dtype', 'float32');
    const half = dtype === 'float16';
    const bits = half && data instanceof Uint16Array;
    const values = bits || (half && Float16ArrayCtor && data instanceof Float16ArrayCtor)
      ? data as ArrayLike<number> : checkFloatData(data, 'data');
    const size = shape.reduce((a, b) => a * b, 1);
    check(values.length === size, 'DATA_LENGTH_MISMATCH', `data has ${values.length} values, shape [${shape}] needs ${size}`);
    checkFitsBinding(this.#backend, storageBytes(size, dtype), `data of shape [${shape}]`);
    const upload = half ? (bits ? (data as Uint16Array) : toHalfBits(values)) : toFloat32(values as FloatData);
    return this.internalTensor(this.#backend.upload(upload), shape, layout, 'tensor');
  }

  /**
   * Wrap an existing GPUBuffer (unmapped, usage STORAGE | COPY_SRC, data from offset 0: float32,
   * or with `dtype: 'float16'` halves two per 4-byte word, the size rounded up to a word; within
   * one buffer binding of the device) without a copy. The buffer stays its owner's:
   * `dispose()` never destroys it; `options.onRelease` tells its owner when normgpu is done.
   */
  fromGPUBuffer(buffer: GPUBuffer, shape: readonly number[], options: WrapOptions = {}): Tensor {
    this.#alive();
    check(this.#backend.kind === 'webgpu', 'INVALID_ARGUMENT', 'fromGPUBuffer needs the WebGPU backend');
    const opts = checkOptions(options, 'fromGPUBuffer options');
    checkGpuBuffer(buffer, 'buffer');
    checkShape(shape);
    const layout = checkLayout(opts.layout);
    const dtype = checkDtype(opts.dtype, 'dtype', 'float32');
    const size = shape.reduce((a, b) => a * b, 1);
    check(
      buffer.size >= storageBytes(size, dtype), 'DATA_LENGTH_MISMATCH',
      `buffer of ${buffer.size} bytes is too small for [${shape}] ${dtype} (${storageBytes(size, dtype)} bytes)`,
    );
    // Bindings take the whole buffer, so it is the buffer's size that must fit.
    check(
      buffer.size <= this.#backend.maxBindingBytes, 'TENSOR_TOO_LARGE',
      `buffer of ${buffer.size} bytes is over the ${this.#backend.maxBindingBytes}-byte limit of one buffer binding on this device`,
    );
    check(
      (buffer.usage & BufferUsage.STORAGE) !== 0 && (buffer.usage & BufferUsage.COPY_SRC) !== 0,
      'INVALID_ARGUMENT', 'a wrapped buffer needs usage STORAGE | COPY_SRC',
    );
    const onRelease = opts.onRelease;
    check(onRelease === undefined || typeof onRelease === 'function', 'INVALID_ARGUMENT', 'onRelease must be a function');
    return this.internalTensor({ kind: 'gpu', buffer, owned: false, onRelease, dtype }, shape, layout, 'fromGPUBuffer');
  }

  /**
   * `F.batch_norm`: training normalizes by batch statistics and updates running ones in place.
   * Every normalization takes the fused epilogues of EpilogueOptions (`residual`, `returnSum`,
   * `activation`, `outputDtype`) and float16 inputs.
   */
  batchNorm(x: Tensor, options: BatchNormOptions & { returnSum: true }): NormWithSum;
  batchNorm(x: Tensor, options?: BatchNormOptions): Tensor;
  batchNorm(x: Tensor, options: BatchNormOptions = {}): Tensor | NormWithSum {
    return this.#normalize(batchNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /** `F.layer_norm` over the trailing `normalizedShape` dims. */
  layerNorm(x: Tensor, options: LayerNormOptions & { returnSum: true }): NormWithSum;
  layerNorm(x: Tensor, options: LayerNormOptions): Tensor;
  layerNorm(x: Tensor, options: LayerNormOptions): Tensor | NormWithSum {
    return this.#normalize(layerNormSpec(this.#input(x).shape, options), x, options);
  }

  /** `F.rms_norm` over the trailing `normalizedShape` dims. */
  rmsNorm(x: Tensor, options: RmsNormOptions & { returnSum: true }): NormWithSum;
  rmsNorm(x: Tensor, options: RmsNormOptions): Tensor;
  rmsNorm(x: Tensor, options: RmsNormOptions): Tensor | NormWithSum {
    return this.#normalize(rmsNormSpec(this.#input(x).shape, options), x, options);
  }

  /** `F.instance_norm` (input statistics per sample and channel). */
  instanceNorm(x: Tensor, options: InstanceNormOptions & { returnSum: true }): NormWithSum;
  instanceNorm(x: Tensor, options?: InstanceNormOptions): Tensor;
  instanceNorm(x: Tensor, options: InstanceNormOptions = {}): Tensor | NormWithSum {
    return this.#normalize(instanceNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /** `F.group_norm`, in either layout. */
  groupNorm(x: Tensor, options: GroupNormOptions & { returnSum: true }): NormWithSum;
  groupNorm(x: Tensor, options: GroupNormOptions): Tensor;
  groupNorm(x: Tensor, options: GroupNormOptions): Tensor | NormWithSum {
    return this.#normalize(groupNormSpec(this.#input(x).shape, x.layout, options), x, options);
  }

  /**
   * `torch.var_mean(x, axes, correction)`: mean and variance with the reduced axes removed, in
   * `options.outputDtype` (default: x's dtype).
   */
  moments(x: Tensor, options: MomentsOptions): Moments {
    const spec = epilogueSpec(momentsSpec(this.#input(x).shape, options), x, options);
    const { mean, variance } = this.#backend.moments(spec, x.storage);
    this.#backend.tuner?.use(spec);
    const shape = spec.statsShape.length ? spec.statsShape : [1];
    return { mean: this.#wrap('moments', mean, shape), variance: this.#wrap('moments', variance, shape) };
  }

  /**
   * `engine[op](x, options)` (BatchNorm training updates its running statistics the same way)
   * and the per-group statistics its backward needs (see SavedStats), as `torch.native_*_norm`
   * return them. BatchNorm inference saves the mean and rstd of its running statistics.
   */
  normForward<O extends NormOp>(op: O, x: Tensor, options: NormOptionsOf[O]): { y: Tensor; saved: SavedStats<Tensor> } {
    const { norm } = this.#gradCall(op, x, x, options);
    const y = (this[op] as (x: Tensor, o: NormOptionsOf[O]) => Tensor).call(this, x, options);
    const o = options as { runningMean?: TensorLike; runningVar?: TensorLike };
    const stats = this.#withParams({ runningMean: o.runningMean, runningVar: o.runningVar }, (p) => (
      this.#backend.savedStats(norm, { x: x.storage, runningMean: p.runningMean, runningVar: p.runningVar })));
    const shape = [groupCount(norm.view)];
    return { y, saved: { mean: this.#wrap(op, stats.mean, shape), rstd: this.#wrap(op, stats.rstd, shape) } };
  }

  /**
   * Gradients of `engine[op](x, options)` given the gradient `dy` of its output (x's shape and
   * layout): `dx`, and `dweight` / `dbias` (weight's shape), each as `options.outputMask` asks
   * (default: dx, and the gradients of the parameters the options pass). From
   * `options.saved` (normForward's statistics) or, without it, from statistics computed again
   * from x (BatchNorm inference: from its running statistics). Backward of BatchNorm training
   * leaves the running statistics alone. Every check runs before any GPU work.
   */
  normBackward<O extends NormOp>(op: O, dy: Tensor, x: Tensor, options: BackwardOptions<O, Tensor>): Gradients {
    const { norm, spec } = this.#gradCall(op, dy, x, options);
    const o = options as BackwardOptions<NormOp, Tensor> & { runningMean?: TensorLike; runningVar?: TensorLike };
    const groups = groupCount(norm.view);
    const saved = o.saved === undefined ? undefined : checkOptions(o.saved, 'saved');
    if (saved) {
      check(saved.rstd !== undefined, 'INVALID_ARGUMENT', 'saved.rstd is required');
      check(saved.mean !== undefined || norm.mode === 'rms', 'INVALID_ARGUMENT', `${op}: saved.mean is required`);
      for (const k of ['mean', 'rstd'] as const) {
        checkSaved(saved[k], `saved.${k}`, groups);
        if (saved[k] !== undefined) this.#input(saved[k], `saved.${k}`);
      }
    }
    return this.#withParams({ weight: o.weight, runningMean: o.runningMean, runningVar: o.runningVar }, (p) => {
      const stats = saved
        ? { mean: saved.mean?.storage, rstd: saved.rstd.storage, temporary: false }
        : { ...this.#backend.savedStats(norm, { x: x.storage, runningMean: p.runningMean, runningVar: p.runningVar }), temporary: true };
      try {
        const out = this.#backend.backward(spec, { dy: dy.storage, x: x.storage, weight: p.weight, mean: stats.mean, rstd: stats.rstd });
        const paramShape = op === 'layerNorm' || op === 'rmsNorm'
          ? [(o as { normalizedShape: number | readonly number[] }).normalizedShape].flat() : [spec.params];
        const grads: Gradients = {};
        if (out.dx) grads.dx = this.#wrap(op, out.dx, x.shape, x.layout);
        if (out.dweight) grads.dweight = this.#wrap(op, out.dweight, paramShape);
        if (out.dbias) grads.dbias = this.#wrap(op, out.dbias, paramShape);
        return grads;
      } finally {
        if (stats.temporary) for (const s of [stats.mean, stats.rstd]) if (s) this.#backend.releaseStorage(s);
      }
    });
  }

  /** The canonical view and kernel choice of a call, without running it. */
  explain(op: OpName, x: Tensor, options: object = {}): Explanation {
    const t = this.#input(x);
    const spec = epilogueSpec(this.#spec(op, t.shape, t.layout, options), t, options);
    const kernels = this.#backend.describe(spec, affineOf(options));
    return {
      op, backend: this.#backend.kind, view: spec.view, kernels, traffic: totalTraffic(spec, kernels),
      tuning: this.#backend.tuner?.choice(spec) ?? null,
    };
  }

  /**
   * `explain` for `normBackward(op, dy, x, options)` (dy has x's shape): the stages the backward
   * would run with their bytes and dispatches; without `options.saved`, the statistics stages
   * that compute them from x come first. `traffic.ratio` 1 is one read of x and dy and one write
   * of the gradients the output mask asks for. `tuning` is null (backward kernels are chosen
   * by adapter class alone: grad_serial on software adapters, the staged kernels on GPUs).
   */
  explainBackward<O extends NormOp>(op: O, x: Tensor, options: BackwardOptions<O, Tensor>): Explanation {
    const { norm, spec } = this.#gradCall(op, x, x, options);
    const kernels = this.#backend.describeBackward(spec, (options as { saved?: unknown }).saved !== undefined);
    return { op, backend: this.#backend.kind, view: norm.view, kernels, traffic: gradTotal(spec, kernels), tuning: null };
  }

  /**
   * `prepare` for training: compile ahead of time every GPU pipeline that `normBackward(op, …)`
   * on tensors of `shape` with `options` (weight and output mask as they will be passed) and the
   * saved statistics of `normForward` will use. The forward's own pipelines come from `prepare`.
   * Resolves at once on the CPU backend.
   */
  async prepareBackward<O extends NormOp>(
    op: O, shape: readonly number[], options: BackwardOptions<O, Tensor>, layout: Layout = 'channels-first',
  ): Promise<void> {
    this.#alive();
    checkShape(shape);
    checkGradOp(op);
    const o = checkOptions(options as BackwardOptions<NormOp>, `${op} options`);
    await this.#backend.prepareBackward(gradSpec(this.#spec(op, shape, checkLayout(layout), o), o, (o as { outputMask?: unknown }).outputMask));
  }

  /**
   * The autotuning table: the kernel family each shape class measured fastest on each adapter
   * this engine has seen (measured here, imported, or loaded from the store), with the figures.
   * Plain JSON: pass it to `createEngine({ tuning })` in another session to skip the timing.
   */
  tuning(): TuningJSON {
    return this.#tuning.toJSON();
  }

  /**
   * Compile ahead of time, without blocking the page (createComputePipelineAsync), every GPU
   * pipeline that `op` on a tensor of `shape` in `layout` with `options` will use, so its first
   * call does not stall on shader compilation. Pipelines are per device and never depend on
   * shapes, so one preparation serves every shape with the same options (epilogues included;
   * `dtype: 'float16'` among them prepares float16 inputs). A call made before (or without)
   * preparing still works. Resolves at once on the CPU backend.
   */
  async prepare(op: OpName, shape: readonly number[], options: object = {}, layout: Layout = 'channels-first'): Promise<void> {
    this.#alive();
    checkShape(shape);
    const l = checkLayout(layout);
    const dtype = checkDtype((options as { dtype?: unknown }).dtype, 'dtype', 'float32');
    const x = { shape, layout: l, size: shape.reduce((a, b) => a * b, 1), dtype };
    const spec = epilogueSpec(this.#spec(op, shape, l, options), x, options);
    await this.#backend.prepare(spec, affineOf(options));
    await this.#backend.tuner?.tune(spec);
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

  #normalize(
    base: NormSpec, x: Tensor,
    o: EpilogueOptions & { weight?: TensorLike; bias?: TensorLike; runningMean?: TensorLike; runningVar?: TensorLike },
  ): Tensor | NormWithSum {
    // Every check passes before host parameters are uploaded, so a throw leaves nothing behind.
    const spec = epilogueSpec(base, x, o);
    const params = { weight: o.weight, bias: o.bias, runningMean: o.runningMean, runningVar: o.runningVar };
    for (const [name, t] of Object.entries(params)) if (isTensorHandle(t)) this.#input(t as Tensor, name);
    const residual = o.residual === undefined ? undefined : this.#input(o.residual as Tensor, 'residual');
    if (spec.updateRunning) checkNotAliased({ input: x, residual, ...params }, ['runningMean', 'runningVar']);
    this.#backend.tuner?.use(spec);
    return this.#withParams(params, (p) => {
      const operands: NormOperands = { x: x.storage, ...p, residual: residual?.storage };
      if (!spec.returnSum) return this.#wrap(spec.op, this.#backend.normalize(spec, operands), x.shape, x.layout);
      const { y, sum } = this.#backend.normalizeWithSum(spec, operands);
      return { y: this.#wrap(spec.op, y, x.shape, x.layout), sum: this.#wrap(spec.op, sum, x.shape, x.layout) };
    });
  }

  /** The forward spec and GradSpec of a backward (or normForward) call, validated; dy has x's shape and layout. */
  #gradCall(op: NormOp, dy: Tensor, x: Tensor, options: object): { norm: NormSpec; spec: GradSpec } {
    checkGradOp(op);
    const t = this.#input(x);
    const o = checkOptions(options as BackwardOptions<NormOp>, `${op} options`);
    const norm = this.#spec(op, t.shape, t.layout, o);
    if (dy !== x) {
      this.#input(dy, 'dy');
      check(
        dy.shape.length === t.shape.length && dy.shape.every((d, i) => d === t.shape[i]), 'GRADIENT_MISMATCH',
        `dy [${dy.shape}] must have the input's shape [${t.shape}]`,
      );
      check(dy.layout === t.layout, 'GRADIENT_MISMATCH', `dy is ${dy.layout}, the input ${t.layout}`);
    }
    check(dy.dtype === 'float32', 'INVALID_DTYPE', 'dy must be float32: float16 has no backward yet');
    for (const k of ['weight', 'runningMean', 'runningVar'] as const) {
      const p = (o as Record<string, unknown>)[k];
      if (isTensorHandle(p)) this.#input(p as Tensor, k);
    }
    return { norm, spec: gradSpec({ ...norm, dtype: t.dtype }, o, o.outputMask) };
  }

  /** Run `fn` with the storages of `params`, host data uploaded for the call and freed after. */
  #withParams<K extends string, T>(params: Record<K, TensorLike | undefined>, fn: (s: Record<K, Storage | undefined>) => T): T {
    const temps: Tensor[] = [];
    try {
      const storages = {} as Record<K, Storage | undefined>;
      for (const k of Object.keys(params) as K[]) {
        const t = params[k];
        if (t === undefined) continue;
        if (isTensorHandle(t)) storages[k] = (t as Tensor).storage;
        else {
          const tensor = this.tensor(t instanceof Float32Array ? t : Float32Array.from(t), [t.length]);
          temps.push(tensor);
          storages[k] = tensor.storage;
        }
      }
      return fn(storages);
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

/** Throws unless `op` has a backward. */
function checkGradOp(op: unknown): void {
  check((['batchNorm', 'layerNorm', 'rmsNorm', 'instanceNorm', 'groupNorm'] as unknown[]).includes(op), 'INVALID_ARGUMENT', `no backward for op ${describe(op)}`);
}

/** Which affine operands an op's options pass. */
function affineOf(options: object): AffineOperands {
  const o = options as { weight?: unknown; bias?: unknown };
  return { weight: o.weight !== undefined, bias: o.bias !== undefined };
}

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
  check(poolBytes === undefined || (typeof poolBytes === 'number' && poolBytes >= 0), 'INVALID_ARGUMENT', `poolBytes must be a number >= 0, got ${poolBytes}`);
  check(warnLeaks === undefined || typeof warnLeaks === 'boolean', 'INVALID_ARGUMENT', `warnLeaks must be a boolean, got ${warnLeaks}`);
  const tuning = await tunerConfig(options.autotune, options.tuning);
  const recovery: Recovery = { policy, recreate: async () => new WebGpuBackend(await acquireDevice(powerPreference), prefer, poolBytes, tuning) };
  if (backend === 'cpu') return new Engine(new CpuBackend(), { warnLeaks, tuning: tuning.table });
  if (options.device) {
    const d = options.device;
    const gpu = new WebGpuBackend({ device: d, info: summarize(d.adapterInfo), owned: false }, prefer, poolBytes, tuning);
    return new Engine(gpu, { warnLeaks, recovery, tuning: tuning.table });
  }
  try {
    return new Engine(await recovery.recreate(), { warnLeaks, recovery, tuning: tuning.table });
  } catch (e) {
    if (backend === 'auto' && e instanceof NormGpuError && e.code === 'WEBGPU_UNAVAILABLE') {
      noteCpuFallback();
      return new Engine(new CpuBackend(), { warnLeaks, tuning: tuning.table });
    }
    throw e;
  }
}
