import type {
  AdapterSummary, Backend, ColumnMoments, ColumnRequest, DeviceLoss, GradOperands, GradStorages, KernelChoice, NormOperands, PreparedImages, Recording,
  ScaleRequest, Storage,
} from '../backend';
import { sameMemory } from '../backend';
import type { ImageInput } from '../image-input';
import type { PreprocessKernels, PreprocessSpec } from '../plan/preprocess';
import { check, NormGpuError } from '../errors';
import { planGpu, linearGrid, SERIAL_WG, APPLY_WG, type AdapterTraits, type GpuPlan } from '../plan/gpu-plan';
import type { NormSpec } from '../plan/spec';
import { TuningTable, type TunerConfig } from '../plan/tuning';
import { gpuTraffic, type AffineOperands, type StageTraffic } from '../plan/traffic';
import { elementCount, groupCount, groupSize } from '../plan/view';
import { fromHalfBits, storageBytes, type DType } from '../half';
import { BufferPool } from './buffer-pool';
import { columnStatsGpu, scaleFeaturesGpu } from './column-stats';
import { backwardGpu, describeBackwardGpu, prepareBackwardGpu, savedStatsGpu } from './grad';
import type { GradSpec } from '../plan/grad';
import { recordReduce } from './reduce';
import type { AcquiredDevice } from './device';
import { prepareImagesGpu } from './preprocess';
import { kernels } from './kernels';
import { BufferUsage, MAP_READ, STAGING_USAGE, STORAGE_USAGE } from '../webgpu-flags';
import { preparePipeline } from './pipelines';
import { CommandStream, pipelineCollector, type Recorder } from './recorder';
import { faultOf, guardScopes, storageFaults } from './faults';
import { adapterKey, GpuTuner, type TrialBuffers } from './tuning';

const MODE = { batch: 0, running: 1, rms: 2, moments: 3 } as const;
/** epilogue.wgsl's ACTIVATION. */
const ACTIVATION = { none: 0, relu: 1, silu: 2, gelu: 3, gelu_tanh: 4 } as const;

function gpuStorage(s: Storage): Storage & { kind: 'gpu' } {
  if (s.kind !== 'gpu') throw new Error('internal: CPU storage given to the WebGPU backend');
  return s;
}

const bufferOf = (s: Storage): GPUBuffer => gpuStorage(s).buffer;

/** Ops one batch holds at most before it is submitted (bounds its held temporaries). */
export const MAX_BATCH_OPS = 128;

/** An open stream and the fault its submit will settle to. */
interface OpenStream {
  stream: CommandStream;
  fault: Promise<NormGpuError | null>;
  settle(fault: Promise<NormGpuError | null>): void;
}

/**
 * Executes plans on one GPUDevice. Ops record into one open batch: one command encoder and
 * compute pass shared by the ops issued back to back, submitted once on a read, an explicit
 * `flush()`, past MAX_BATCH_OPS, or at the end of the current task (a microtask). Inside
 * `encode`, ops record into the caller's encoder instead. Temporaries come from the pool and
 * go back once the work that uses them has been submitted.
 */
export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly device: GPUDevice;
  readonly info: AdapterSummary;
  readonly traits: AdapterTraits;
  readonly pool: BufferPool;
  readonly maxBindingBytes: number;
  readonly #owned: boolean;
  #disposed = false;
  #lost: DeviceLoss | null = null;
  onLost: ((loss: DeviceLoss) => void) | null = null;
  /** @internal Dawn's GPU object in Node, held so V8 cannot collect it while the device lives. */
  readonly keepAlive: unknown;
  // Bound where a stage's optional operand is absent. Writable bindings may not alias each
  // other, so each writable slot has its own spare.
  readonly #unusedRead: GPUBuffer;
  readonly #unusedWrite: [GPUBuffer, GPUBuffer, GPUBuffer];
  #batch: OpenStream | null = null;
  /** The caller's encoder while `encode` runs. */
  #external: OpenStream | null = null;

  /** Plans each call with its shape class's tuned kernel family (src/gpu/tuning.ts). */
  readonly tuner: GpuTuner;

  /** `poolBytes`: the cap on free pooled bytes (see BufferPool); `tuning`: the engine's autotuning (default: off, no table). */
  constructor(acquired: AcquiredDevice, prefer: AdapterTraits['prefer'], poolBytes?: number, tuning?: TunerConfig) {
    this.device = acquired.device;
    this.info = acquired.info;
    this.#owned = acquired.owned;
    this.keepAlive = acquired.keepAlive;
    this.pool = new BufferPool(this.device, poolBytes);
    this.maxBindingBytes = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    this.traits = {
      software: acquired.info.software,
      subgroups: this.device.features.has('subgroups'),
      maxWorkgroupsPerDim: this.device.limits.maxComputeWorkgroupsPerDimension,
      prefer,
    };
    this.tuner = new GpuTuner(this, adapterKey(acquired.info), tuning ?? { autotune: false, budgetMs: 0, table: new TuningTable() });
    // Bound where a stage's optional operand (weight, bias, running stats) is absent.
    const spare = (label: string) => this.device.createBuffer({ label: `normgpu:unused-${label}`, size: 16, usage: BufferUsage.STORAGE });
    this.#unusedRead = spare('read');
    this.#unusedWrite = [spare('stats'), spare('mean'), spare('var')];
    void this.device.lost.then((info) => {
      if (this.#disposed) return;
      this.#lost = { reason: info.reason ?? 'unknown', message: info.message ?? '' };
      this.onLost?.(this.#lost);
    });
  }

  get lost(): DeviceLoss | null {
    return this.#lost;
  }

  assertUsable(): void {
    check(!this.#disposed, 'DISPOSED_ENGINE', 'the engine was disposed');
    if (this.#lost) throw lostError(this.#lost);
  }

  /**
   * Record one op labelled `label` into the open stream (the batch, or the caller's encoder in
   * `encode`), inside validation, out-of-memory and internal error scopes. The fault settles to
   * the first error raised there, by the stream's submit, or carried by one of `inputs`, so a
   * result's read rejects with a typed error instead of returning zeros.
   */
  record<T>(label: string, inputs: readonly (Storage | undefined)[], fn: (rec: Recorder) => T): { value: T; fault: Promise<NormGpuError | null> } {
    this.assertUsable();
    const open = this.#open();
    const { value, fault } = guardScopes(this.device, label, () => {
      const rec = open.stream.recorder(label);
      try {
        return fn(rec);
      } finally {
        rec.end();
      }
    });
    if (open === this.#batch && open.stream.ops >= MAX_BATCH_OPS) this.flush();
    return { value, fault: faultOf([fault, open.fault, ...storageFaults(inputs)]) };
  }

  /** Submit the open batch now (a no-op when nothing is pending). */
  flush(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = null;
    batch.stream.close();
    batch.settle(guardScopes(this.device, 'normgpu:submit', () => {
      this.device.queue.submit([batch.stream.encoder.finish()]);
    }).fault);
    batch.stream.retire();
  }

  /**
   * Run `fn`, whose ops record into `encoder` (the caller submits it) instead of normgpu's
   * batch; earlier ops are flushed first, so they run before it. The recorded temporaries stay
   * allocated until `release()`, which the caller calls after submitting the encoder.
   */
  encode<T>(encoder: GPUCommandEncoder, fn: () => T): Recording<T> {
    this.assertUsable();
    check(!this.#external, 'INVALID_ARGUMENT', 'encode() calls do not nest');
    this.flush();
    const stream = new CommandStream(this.device, this.pool, encoder);
    this.#external = { stream, fault: Promise.resolve(null), settle: () => {} };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      // The caller discards an encoder whose recording threw: its temporaries go back now.
      stream.close();
      stream.retire();
      throw e;
    } finally {
      this.#external = null;
    }
    stream.close();
    let released = false;
    return {
      result,
      release: () => {
        if (!released) stream.retire();
        released = true;
      },
    };
  }

  #open(): OpenStream {
    if (this.#external) return this.#external;
    if (!this.#batch) {
      let settle!: (f: Promise<NormGpuError | null>) => void;
      const fault = new Promise<NormGpuError | null>((r) => { settle = r; });
      const encoder = this.device.createCommandEncoder({ label: 'normgpu:batch' });
      const batch: OpenStream = { stream: new CommandStream(this.device, this.pool, encoder), fault, settle };
      this.#batch = batch;
      // Ops issued in one task share the batch; nothing waits past the task for a submit.
      queueMicrotask(() => {
        if (this.#batch === batch && !this.#disposed) this.flush();
      });
    }
    return this.#batch;
  }

  upload(data: Float32Array | Uint16Array): Storage {
    this.assertUsable();
    // Halves go two per word: an odd count gets a zero padding half.
    const half = data instanceof Uint16Array;
    const words = half && data.length % 2 === 1 ? Uint16Array.from({ length: data.length + 1 }, (_, i) => data[i] ?? 0) : data;
    // A fresh or pooled buffer: pooled ones were released after their last submit, so this
    // write cannot overtake work that still reads them.
    const { value: buffer, fault } = guardScopes(this.device, 'normgpu:upload', () => {
      const b = this.pool.acquire(words.byteLength, STORAGE_USAGE, 'normgpu:tensor');
      this.device.queue.writeBuffer(b, 0, words.buffer, words.byteOffset, words.byteLength);
      return b;
    });
    return { kind: 'gpu', buffer, owned: true, fault, ...(half ? { dtype: 'float16' as const } : {}) };
  }

  async readStorage(storage: Storage, size: number): Promise<Float32Array> {
    const dtype = storage.dtype ?? 'float32';
    const [data] = await this.readBuffers(
      [{ buffer: bufferOf(storage), bytes: storageBytes(size, dtype) }], faultOf(storageFaults([storage])),
    );
    return dtype === 'float16' ? fromHalfBits(new Uint16Array(data.buffer, data.byteOffset, size)) : data;
  }

  /**
   * Copy several buffer prefixes into one staging buffer and map it once. The copies are
   * submitted before this returns its promise, so the sources may be released right away.
   * Rejects with `written` (the fault of the work that wrote the parts) or a fault of the
   * copies, or with DEVICE_LOST or DISPOSED_ENGINE when the device goes away first.
   */
  async readBuffers(
    parts: readonly { buffer: GPUBuffer; bytes: number }[], written: Promise<NormGpuError | null> = Promise.resolve(null),
  ): Promise<Float32Array[]> {
    const total = Math.max(4, parts.reduce((s, p) => s + p.bytes, 0));
    check(!this.#external, 'INVALID_ARGUMENT', 'read() inside encode(): results exist only once the caller has submitted the encoder');
    // The copies join the batch, whose one submit then carries the pending ops and the readback.
    const { value: staging, fault } = this.record('normgpu:readback', [], (rec) => {
      const buffer = this.pool.acquire(total, STAGING_USAGE, 'normgpu:readback');
      let offset = 0;
      for (const p of parts) {
        rec.copy(p.buffer, buffer, offset, p.bytes);
        offset += p.bytes;
      }
      return buffer;
    });
    this.flush();
    const mapped = staging.mapAsync(MAP_READ, 0, total).then(() => null, (e: unknown) => e);
    const [error, mapFailure] = await Promise.all([faultOf([written, fault]), mapped]);
    if (error || mapFailure) {
      this.pool.discard(staging);
      throw error ?? (await this.#readFailure(mapFailure));
    }
    const all = new Float32Array(staging.getMappedRange(0, total).slice(0));
    staging.unmap();
    this.pool.release(staging);
    let at = 0;
    return parts.map((p) => {
      const a = all.subarray(at / 4, (at + p.bytes) / 4);
      at += p.bytes;
      return a;
    });
  }

  /** The typed error for a mapAsync that failed without a captured GPU error. */
  async #readFailure(cause: unknown): Promise<NormGpuError> {
    if (this.#disposed) return new NormGpuError('DISPOSED_ENGINE', 'the engine was disposed before the read finished');
    // A lost device aborts pending maps before its lost promise settles.
    await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 100))]);
    if (this.#lost) return lostError(this.#lost);
    return new NormGpuError('GPU_ERROR', `reading back a result failed: ${cause instanceof Error ? cause.message || cause.name : String(cause)}`);
  }

  preprocess(spec: PreprocessSpec, sources: readonly ImageInput[], kernels: PreprocessKernels): PreparedImages {
    return prepareImagesGpu(this, spec, sources, kernels);
  }

  columnMoments(x: Storage, request: ColumnRequest): Promise<ColumnMoments> {
    return columnStatsGpu(this, gpuStorage(x), request);
  }

  scaleFeatures(x: Storage, count: number, request: ScaleRequest): Storage {
    return scaleFeaturesGpu(this, gpuStorage(x), count, request);
  }

  memory(): { liveBytes: number; pooledBytes: number } {
    return this.pool.stats();
  }

  trim(): void {
    this.pool.trim();
  }

  releaseStorage(storage: Storage): void {
    if (storage.kind !== 'gpu') return;
    if (storage.owned) this.release(storage.buffer);
    else if (storage.onRelease) {
      const open = this.#external ?? this.#batch;
      if (open) open.stream.afterSubmit(storage.onRelease);
      else storage.onRelease();
    }
  }

  /** Give a buffer back to the pool once the recorded work that may use it has been submitted. */
  release(buffer: GPUBuffer): void {
    const open = this.#external ?? this.#batch;
    if (open) open.stream.hold(buffer);
    else this.pool.release(buffer);
  }

  plan(spec: NormSpec): GpuPlan {
    return planGpu(spec, this.tuner.traitsFor(spec));
  }

  /** @internal Autotuning's view of the backend: it can run work. */
  usable(): boolean {
    return !this.#disposed && !this.#lost;
  }

  /** @internal Autotuning: compile the pipelines of `spec` planned as `plan`. */
  preparePlan(spec: NormSpec, plan: GpuPlan): Promise<void> {
    return this.#prepare(spec, { weight: false, bias: false }, plan);
  }

  /** @internal Autotuning's trial: record a call of `spec` planned as `plan` on scratch buffers into `encoder`. */
  recordTrial(encoder: GPUCommandEncoder, spec: NormSpec, plan: GpuPlan, b: TrialBuffers): () => void {
    const stream = new CommandStream(this.device, this.pool, encoder);
    const rec = stream.recorder('normgpu:autotune');
    this.#run(rec, spec, { kind: 'gpu', buffer: b.x, owned: false }, {
      channelMean: b.mean, channelVar: b.variance, y: spec.mode === 'moments' ? undefined : b.y,
    }, plan);
    rec.end();
    stream.close();
    return () => stream.retire();
  }

  /**
   * Compile every pipeline a call of `spec` uses with createComputePipelineAsync: the stages
   * are recorded into a collector that records nothing, so the list cannot drift from `#run`.
   */
  async prepare(spec: NormSpec, affine: { weight: boolean; bias: boolean }): Promise<void> {
    this.assertUsable();
    await this.#prepare(spec, affine, this.plan(spec));
  }

  async #prepare(spec: NormSpec, affine: { weight: boolean; bias: boolean }, plan: GpuPlan): Promise<void> {
    const wanted = pipelineCollector(this.#unusedRead);
    const x: Storage = { kind: 'gpu', buffer: this.#unusedRead, owned: false };
    this.#run(wanted.recorder, spec, x, {
      channelMean: this.#unusedWrite[1], channelVar: this.#unusedWrite[2],
      weight: affine.weight ? this.#unusedRead : undefined, bias: affine.bias ? this.#unusedRead : undefined,
      y: spec.mode === 'moments' ? undefined : this.#unusedRead,
      ...(spec.residual ? { residual: this.#unusedRead, sum: this.#unusedWrite[0] } : {}),
    }, plan);
    await Promise.all(wanted.kernels.map(({ def, overrides }) => preparePipeline(this.device, def, overrides)));
  }

  describe(spec: NormSpec, affine: AffineOperands): KernelChoice[] {
    const plan = this.plan(spec);
    const traffic = gpuTraffic(spec, plan, affine);
    const out: Omit<KernelChoice, keyof StageTraffic>[] = [];
    if (plan.fused) {
      const stage = plan.fused.kernel === 'rows' ? 'normalizeRows' : 'normalizeSerial';
      out.push({ stage, variant: `fused-${plan.fused.kernel}`, workgroups: plan.fused.workgroups, why: plan.fused.why });
    }
    const elementwise = plan.elementwise;
    if (elementwise && spec.residual) out.push({ stage: 'addResidual', variant: `sum-${spec.dtype}`, workgroups: elementwise.workgroups });
    if (plan.reduce) {
      const merge = this.traits.subgroups ? 'subgroup' : 'workgroup-memory';
      const variant = plan.reduce.variant === 'rows' ? `rows+${merge}` : plan.reduce.entry === 'main_vec4' ? 'serial+vec4'
        : plan.reduce.entry === 'main_vec4_columns' ? 'serial+vec4-columns' : plan.reduce.variant;
      out.push({ stage: 'reduceStats', variant, workgroups: plan.reduce.workgroups, why: plan.reduce.why });
    }
    if (plan.finalize) out.push({ stage: 'finalizeStats', variant: spec.mode, workgroups: plan.finalize.workgroups });
    if (elementwise && !spec.residual) out.push({ stage: 'addResidual', variant: 'cast-float16', workgroups: elementwise.workgroups });
    if (plan.apply) {
      if (plan.apply.vec4 && spec.rows.kind === 'pixels') out.push({ stage: 'foldAffine', variant: 'planes', workgroups: [] });
      const variant = plan.apply.pairs ? 'pairs-float16' : plan.apply.run ? 'vec4-runs' : plan.apply.vec4 ? `vec4-${spec.rows.kind}` : 'scalar';
      out.push({ stage: 'applyNorm', variant, workgroups: plan.apply.workgroups });
    }
    return out.map((k) => ({ ...k, ...traffic[k.stage] }));
  }

  normalize(spec: NormSpec, ops: NormOperands): Storage {
    return this.#normalize(spec, ops, false).y;
  }

  normalizeWithSum(spec: NormSpec, ops: NormOperands): { y: Storage; sum: Storage } {
    const { y, sum } = this.#normalize(spec, ops, true);
    return { y, sum: sum! };
  }

  #normalize(spec: NormSpec, ops: NormOperands, wantSum: boolean): { y: Storage; sum?: Storage } {
    const inputs = [ops.x, ops.weight, ops.bias, ops.runningMean, ops.runningVar, ops.residual];
    const count = elementCount(spec.view);
    const { value, fault } = this.record(`normgpu:${spec.op}`, inputs, (rec) => {
      const out = rec.output(storageBytes(count, spec.outputDtype), STORAGE_USAGE, `normgpu:${spec.op}:output`);
      // The sum is written whenever there is a residual: the staged stages read it back.
      const sumBytes = storageBytes(count, spec.dtype);
      const sum = !spec.residual ? undefined
        : wantSum ? rec.output(sumBytes, STORAGE_USAGE, `normgpu:${spec.op}:sum`) : rec.temp(sumBytes, STORAGE_USAGE, 'sum');
      const channelMean = ops.runningMean && bufferOf(ops.runningMean);
      let channelVar = ops.runningVar && bufferOf(ops.runningVar);
      if (channelVar && channelVar === channelMean) {
        // One tensor as both statistics of an inference (the engine rejects it for training):
        // finalize_stats binds both writable, and writable bindings may not alias.
        const copy = rec.temp(channelVar.size, STORAGE_USAGE, 'aliased-running-var');
        rec.copy(channelVar, copy, 0, channelVar.size);
        channelVar = copy;
      }
      this.#run(rec, spec, ops.x, {
        channelMean, channelVar, weight: ops.weight && bufferOf(ops.weight), bias: ops.bias && bufferOf(ops.bias), y: out,
        residual: ops.residual && bufferOf(ops.residual), sum,
      });
      return { out, sum };
    });
    return {
      y: { kind: 'gpu', buffer: value.out, owned: true, fault, dtype: spec.outputDtype },
      sum: wantSum && value.sum ? { kind: 'gpu', buffer: value.sum, owned: true, fault, dtype: spec.dtype } : undefined,
    };
  }

  cast(x: Storage, count: number, dtype: DType): Storage {
    const { value, fault } = this.record('normgpu:cast', [x], (rec) => {
      const out = rec.output(storageBytes(count, dtype), STORAGE_USAGE, 'normgpu:cast:output');
      const words = dtype === 'float16' ? Math.ceil(count / 2) : count;
      rec.dispatch(kernels.addResidual, { WG: APPLY_WG, X_HALF: x.dtype === 'float16', Y_HALF: dtype === 'float16', RESIDUAL: false },
        [rec.uniform('cast-params', [count]), bufferOf(x), this.#unusedRead, out],
        linearGrid(words, APPLY_WG, this.traits.maxWorkgroupsPerDim));
      return out;
    });
    return { kind: 'gpu', buffer: value, owned: true, fault, dtype };
  }

  axpby(a: Storage, alpha: number, b: Storage | null, beta: number, count: number, options: { inPlace?: boolean } = {}): Storage {
    const inPlace = options.inPlace ?? false;
    // A read-only and a read-write binding of one buffer would fail validation.
    if (inPlace && (!b || sameMemory(a, b))) throw new Error('internal: axpby in place needs a b that does not share a\'s memory');
    const { value, fault } = this.record('normgpu:axpby', [a, b ?? undefined], (rec) => {
      const y = inPlace ? bufferOf(b!) : rec.output(count * 4, STORAGE_USAGE, 'normgpu:axpby:output');
      if (!b && alpha === 1) {
        // A copy: bit-exact, where a multiply by 1 may flush subnormals or change NaN payloads.
        rec.copy(bufferOf(a), y, 0, count * 4);
        return y;
      }
      const vec4 = count % 4 === 0;
      rec.dispatch(kernels.axpby(vec4), { WG: APPLY_WG, HAS_B: !!b && !inPlace, IN_PLACE: inPlace },
        [rec.uniform('axpby-params', [count], [alpha, beta]), bufferOf(a), b && !inPlace ? bufferOf(b) : this.#unusedRead, y],
        linearGrid(vec4 ? count / 4 : count, APPLY_WG, this.traits.maxWorkgroupsPerDim));
      return y;
    });
    return inPlace ? { ...gpuStorage(b!), fault } : { kind: 'gpu', buffer: value, owned: true, fault };
  }

  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage } {
    const bytes = storageBytes(groupCount(spec.view), spec.outputDtype);
    const { value, fault } = this.record('normgpu:moments', [x], (rec) => {
      const mean = rec.output(bytes, STORAGE_USAGE, 'normgpu:moments:mean');
      const variance = rec.output(bytes, STORAGE_USAGE, 'normgpu:moments:variance');
      this.#run(rec, spec, x, { channelMean: mean, channelVar: variance });
      return { mean, variance };
    });
    const dtype = spec.outputDtype;
    return {
      mean: { kind: 'gpu', buffer: value.mean, owned: true, fault, dtype },
      variance: { kind: 'gpu', buffer: value.variance, owned: true, fault, dtype },
    };
  }

  savedStats(spec: NormSpec, ops: NormOperands): { mean: Storage; rstd: Storage } {
    return savedStatsGpu(this, spec, ops);
  }

  backward(spec: GradSpec, ops: GradOperands): GradStorages {
    return backwardGpu(this, spec, ops);
  }

  describeBackward(spec: GradSpec, saved: boolean): KernelChoice[] {
    return describeBackwardGpu(this, spec, saved);
  }

  async prepareBackward(spec: GradSpec): Promise<void> {
    this.assertUsable();
    await prepareBackwardGpu(this, spec, this.#unusedRead);
  }

  #run(rec: Recorder, spec: NormSpec, x: Storage, io: {
    channelMean?: GPUBuffer; channelVar?: GPUBuffer; weight?: GPUBuffer; bias?: GPUBuffer; y?: GPUBuffer;
    /** With spec.residual: the residual, and where the sum goes. */
    residual?: GPUBuffer; sum?: GPUBuffer;
  }, plan = this.plan(spec)): void {
    const v = spec.view;
    let xBuf = bufferOf(x);
    const square = spec.mode === 'rms';
    // welford.wgsl's overrides of every statistics stage.
    const stat = { SQUARE: square, RESCUE_TINY: plan.rescueTiny };
    // epilogue.wgsl's overrides of the stages that read x or write y.
    const types = { X_HALF: spec.dtype === 'float16', Y_HALF: spec.outputDtype === 'float16' };
    const epilogue = { ...types, ACTIVATION: ACTIVATION[spec.activation] };
    const residual = spec.residual && io.residual && io.sum ? { RESIDUAL: true, buffers: [io.residual, io.sum] } : null;
    if (plan.fused?.kernel === 'rows' && io.y) {
      rec.dispatch(kernels.normalizeRows(this.traits.subgroups, plan.fused.entry), {
        WG: plan.fused.wg, ...stat, ...epilogue, HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias, RESIDUAL: !!residual,
      }, [
        rec.uniform('rows-params', [groupCount(v), v.q, v.s, spec.paramQ, spec.paramS], [spec.eps]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
        ...(residual?.buffers ?? [this.#unusedRead, this.#unusedWrite[0]]),
      ], plan.fused.workgroups);
      return;
    }
    if (plan.fused && io.y) {
      rec.dispatch(kernels.normalizeSerial(plan.fused.entry), {
        WG: plan.fused.wg, MODE: MODE[spec.mode], ...stat, ...epilogue, UPDATE_RUNNING: spec.updateRunning,
        HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias, RESIDUAL: !!residual,
      }, [
        rec.uniform('serial-params', [v.o, v.p, v.q, v.s, spec.paramQ, spec.paramS], [spec.eps, spec.momentum]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
        io.channelMean ?? this.#unusedWrite[1], io.channelVar ?? this.#unusedWrite[2],
        ...(residual?.buffers ?? [this.#unusedRead, this.#unusedWrite[0]]),
      ], plan.fused.workgroups);
      return;
    }
    if (residual && plan.elementwise) {
      // The staged stages read the sum instead of x.
      rec.dispatch(kernels.addResidual, { WG: APPLY_WG, X_HALF: types.X_HALF, Y_HALF: types.X_HALF, RESIDUAL: true },
        [rec.uniform('add-params', [elementCount(v)]), xBuf, io.residual!, io.sum!], plan.elementwise.workgroups);
      xBuf = io.sum!;
    }

    let partials = this.#unusedRead;
    const r = plan.reduce;
    if (r) {
      partials = rec.temp(r.partials * 16, BufferUsage.STORAGE, 'partials');
      recordReduce(rec, r, this.traits.subgroups, { ...stat, X_HALF: types.X_HALF }, xBuf, partials, this.#unusedWrite[0]);
    }

    const stats = spec.mode === 'moments' ? this.#unusedWrite[0] : rec.temp(groupCount(v) * 16, BufferUsage.STORAGE, 'stats');
    // float16 moments: finalize_stats writes float32, add_residual rounds it into the outputs.
    const halfMoments = spec.mode === 'moments' && plan.elementwise && io.channelMean && io.channelVar
      ? { mean: io.channelMean, variance: io.channelVar, workgroups: plan.elementwise.workgroups } : null;
    const channelMean = halfMoments ? rec.temp(groupCount(v) * 4, BufferUsage.STORAGE, 'moments-mean') : io.channelMean;
    const channelVar = halfMoments ? rec.temp(groupCount(v) * 4, BufferUsage.STORAGE, 'moments-variance') : io.channelVar;
    rec.dispatch(kernels.finalizeStats, { WG: SERIAL_WG, MODE: MODE[spec.mode], SQUARE: square, UPDATE_RUNNING: spec.updateRunning },
      [
        rec.uniform('finalize-params', [v.o, v.q, r?.r1 ?? 1, r?.r2 ?? 1], [groupSize(v), spec.eps, spec.momentum, spec.correction]),
        partials, stats, channelMean ?? this.#unusedWrite[1], channelVar ?? this.#unusedWrite[2],
      ],
      plan.finalize!.workgroups);
    if (halfMoments) {
      for (const [from, to] of [[channelMean!, halfMoments.mean], [channelVar!, halfMoments.variance]]) {
        rec.dispatch(kernels.addResidual, { WG: APPLY_WG, X_HALF: false, Y_HALF: true, RESIDUAL: false },
          [rec.uniform('cast-params', [groupCount(v)]), from, this.#unusedRead, to], halfMoments.workgroups);
      }
    }

    if (plan.apply && io.y) {
      const l = spec.rows;
      const affine = { HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias };
      let table = stats;
      let plane = 0;
      const vec4Pixels = plan.apply.vec4 && l.kind === 'pixels';
      if (vec4Pixels) {
        const entries = l.groupMod * l.width;
        plane = entries / 4;
        table = rec.temp(entries * 20, BufferUsage.STORAGE, 'affine-planes'); // five planes
        rec.dispatch(kernels.foldAffine, { WG: SERIAL_WG, ...affine },
          [rec.uniform('fold-params', [entries, l.width, v.q]), stats, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, table],
          linearGrid(entries, SERIAL_WG, this.traits.maxWorkgroupsPerDim));
      }
      const entry = plan.apply.pairs ? 'main_pairs' : plan.apply.run ? 'main_vec4_runs' : plan.apply.vec4 ? `main_vec4_${l.kind}` : 'main';
      rec.dispatch(kernels.applyNorm(entry), {
        WG: APPLY_WG, ...epilogue,
        // Folded planes already hold weight and bias.
        HAS_WEIGHT: affine.HAS_WEIGHT && !vec4Pixels, HAS_BIAS: affine.HAS_BIAS && !vec4Pixels,
        PARAM_PER_ROW: l.kind === 'planes', COLUMN_GROUPS: l.columnGroups,
      },
        [
          rec.uniform('apply-params', [
            elementCount(v), l.width, l.groupDiv, l.groupMod, l.groupMul, l.columnGroupDiv, l.paramDiv, l.paramMod, plane,
            plan.apply.tw, plan.apply.run,
          ]),
          table, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, xBuf, io.y,
        ],
        plan.apply.workgroups);
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.flush();
    this.#disposed = true;
    this.pool.close();
    for (const b of [this.#unusedRead, ...this.#unusedWrite]) b.destroy();
    if (this.#owned) this.device.destroy();
  }
}

function lostError(lost: DeviceLoss): NormGpuError {
  return new NormGpuError('DEVICE_LOST', `the GPU device was lost (reason: ${lost.reason}${lost.message ? `: ${lost.message}` : ''})`);
}
