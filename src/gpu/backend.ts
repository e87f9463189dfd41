import type {
  AdapterSummary, Backend, ColumnMoments, ColumnRequest, DeviceLoss, KernelChoice, NormOperands, PreparedImages, Recording,
  ScaleRequest, Storage,
} from '../backend';
import type { ImageInput } from '../image-input';
import type { PreprocessSpec } from '../plan/preprocess';
import { check, NormGpuError } from '../errors';
import { planGpu, linearGrid, REDUCE_WG, SERIAL_WG, APPLY_WG, type AdapterTraits, type GpuPlan } from '../plan/gpu-plan';
import type { NormSpec } from '../plan/spec';
import { elementCount, groupCount, groupSize } from '../plan/view';
import { BufferPool } from './buffer-pool';
import { columnStatsGpu, scaleFeaturesGpu } from './column-stats';
import type { AcquiredDevice } from './device';
import { prepareImagesGpu } from './preprocess';
import { kernels } from './kernels';
import { BufferUsage, MAP_READ, STAGING_USAGE, STORAGE_USAGE } from './flags';
import { preparePipeline } from './pipelines';
import { CommandStream, pipelineCollector, type Recorder } from './recorder';
import { faultOf, guardScopes, storageFaults } from './faults';

const MODE = { batch: 0, running: 1, rms: 2, moments: 3 } as const;

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

  /** `poolBytes`: the cap on free pooled bytes (see BufferPool). */
  constructor(acquired: AcquiredDevice, prefer: AdapterTraits['prefer'], poolBytes?: number) {
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

  upload(data: Float32Array): Storage {
    this.assertUsable();
    // A fresh or pooled buffer: pooled ones were released after their last submit, so this
    // write cannot overtake work that still reads them.
    const { value: buffer, fault } = guardScopes(this.device, 'normgpu:upload', () => {
      const b = this.pool.acquire(data.byteLength, STORAGE_USAGE, 'normgpu:tensor');
      this.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      return b;
    });
    return { kind: 'gpu', buffer, owned: true, fault };
  }

  async readStorage(storage: Storage, size: number): Promise<Float32Array> {
    const [data] = await this.readBuffers([{ buffer: bufferOf(storage), bytes: size * 4 }], faultOf(storageFaults([storage])));
    return data;
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

  preprocess(spec: PreprocessSpec, sources: readonly ImageInput[]): PreparedImages {
    return prepareImagesGpu(this, spec, sources);
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
    if (storage.kind === 'gpu' && storage.owned) this.release(storage.buffer);
  }

  /** Give a buffer back to the pool once the recorded work that may use it has been submitted. */
  release(buffer: GPUBuffer): void {
    const open = this.#external ?? this.#batch;
    if (open) open.stream.hold(buffer);
    else this.pool.release(buffer);
  }

  plan(spec: NormSpec): GpuPlan {
    return planGpu(spec, this.traits);
  }

  /**
   * Compile every pipeline a call of `spec` uses with createComputePipelineAsync: the stages
   * are recorded into a collector that records nothing, so the list cannot drift from `#run`.
   */
  async prepare(spec: NormSpec, affine: { weight: boolean; bias: boolean }): Promise<void> {
    this.assertUsable();
    const wanted = pipelineCollector(this.#unusedRead);
    const x: Storage = { kind: 'gpu', buffer: this.#unusedRead, owned: false };
    this.#run(wanted.recorder, spec, x, {
      channelMean: this.#unusedWrite[1], channelVar: this.#unusedWrite[2],
      weight: affine.weight ? this.#unusedRead : undefined, bias: affine.bias ? this.#unusedRead : undefined,
      y: spec.mode === 'moments' ? undefined : this.#unusedRead,
    });
    await Promise.all(wanted.kernels.map(({ def, overrides }) => preparePipeline(this.device, def, overrides)));
  }

  describe(spec: NormSpec): KernelChoice[] {
    const plan = this.plan(spec);
    const out: KernelChoice[] = [];
    if (plan.fused) {
      const stage = plan.fused.kernel === 'rows' ? 'normalizeRows' : 'normalizeSerial';
      return [{ stage, variant: `fused-${plan.fused.kernel}`, workgroups: plan.fused.workgroups, why: plan.fused.why }];
    }
    if (plan.reduce) {
      out.push({ stage: 'reduceStats', variant: plan.reduce.variant, workgroups: plan.reduce.workgroups, why: plan.reduce.why });
    }
    if (plan.finalize) out.push({ stage: 'finalizeStats', variant: spec.mode, workgroups: plan.finalize.workgroups });
    if (plan.apply) {
      if (plan.apply.vec4 && spec.rows.kind === 'pixels') out.push({ stage: 'foldAffine', variant: 'planes', workgroups: [] });
      out.push({ stage: 'applyNorm', variant: plan.apply.vec4 ? `vec4-${spec.rows.kind}` : 'scalar', workgroups: plan.apply.workgroups });
    }
    const merge = this.traits.subgroups ? 'subgroup' : 'workgroup-memory';
    if (plan.reduce?.variant === 'rows') out[0].variant += `+${merge}`;
    return out;
  }

  normalize(spec: NormSpec, ops: NormOperands): Storage {
    const inputs = [ops.x, ops.weight, ops.bias, ops.runningMean, ops.runningVar];
    const { value: y, fault } = this.record(`normgpu:${spec.op}`, inputs, (rec) => {
      const out = rec.output(elementCount(spec.view) * 4, STORAGE_USAGE, `normgpu:${spec.op}:output`);
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
      });
      return out;
    });
    return { kind: 'gpu', buffer: y, owned: true, fault };
  }

  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage } {
    const bytes = groupCount(spec.view) * 4;
    const { value, fault } = this.record('normgpu:moments', [x], (rec) => {
      const mean = rec.output(bytes, STORAGE_USAGE, 'normgpu:moments:mean');
      const variance = rec.output(bytes, STORAGE_USAGE, 'normgpu:moments:variance');
      this.#run(rec, spec, x, { channelMean: mean, channelVar: variance });
      return { mean, variance };
    });
    return {
      mean: { kind: 'gpu', buffer: value.mean, owned: true, fault },
      variance: { kind: 'gpu', buffer: value.variance, owned: true, fault },
    };
  }

  #run(rec: Recorder, spec: NormSpec, x: Storage, io: {
    channelMean?: GPUBuffer; channelVar?: GPUBuffer; weight?: GPUBuffer; bias?: GPUBuffer; y?: GPUBuffer;
  }): void {
    const plan = this.plan(spec);
    const v = spec.view;
    const xBuf = bufferOf(x);
    const square = spec.mode === 'rms';
    // welford.wgsl's overrides of every statistics stage.
    const stat = { SQUARE: square, RESCUE_TINY: plan.rescueTiny };
    if (plan.fused?.kernel === 'rows' && io.y) {
      rec.dispatch(kernels.normalizeRows(this.traits.subgroups, plan.fused.entry), {
        WG: REDUCE_WG, ...stat, HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias,
      }, [
        rec.uniform('rows-params', [groupCount(v), v.q, v.s, spec.paramQ, spec.paramS], [spec.eps]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
      ], plan.fused.workgroups);
      return;
    }
    if (plan.fused && io.y) {
      rec.dispatch(kernels.normalizeSerial(plan.fused.entry), {
        WG: SERIAL_WG, MODE: MODE[spec.mode], ...stat, UPDATE_RUNNING: spec.updateRunning,
        HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias,
      }, [
        rec.uniform('serial-params', [v.o, v.p, v.q, v.s, spec.paramQ, spec.paramS], [spec.eps, spec.momentum]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
        io.channelMean ?? this.#unusedWrite[1], io.channelVar ?? this.#unusedWrite[2],
      ], plan.fused.workgroups);
      return;
    }

    let partials = this.#unusedRead;
    const r = plan.reduce;
    if (r) {
      partials = rec.temp(r.partials * 16, BufferUsage.STORAGE, 'partials');
      const view = [r.view.o, r.view.p, r.view.q, r.view.s];
      if (r.variant === 'serial') {
        rec.dispatch(kernels.reduceStatsSerial, { WG: SERIAL_WG, ...stat },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), xBuf, partials], r.workgroups);
      } else if (r.variant === 'columns') {
        rec.dispatch(kernels.reduceStatsColumns, { WG: REDUCE_WG, ...stat },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks, r.tx]), xBuf, partials], r.workgroups);
      } else {
        rec.dispatch(kernels.reduceStats(this.traits.subgroups), { WG: REDUCE_WG, ...stat },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), xBuf, partials], r.workgroups);
      }
    }

    const stats = spec.mode === 'moments' ? this.#unusedWrite[0] : rec.temp(groupCount(v) * 16, BufferUsage.STORAGE, 'stats');
    rec.dispatch(kernels.finalizeStats, { WG: SERIAL_WG, MODE: MODE[spec.mode], SQUARE: square, UPDATE_RUNNING: spec.updateRunning },
      [
        rec.uniform('finalize-params', [v.o, v.q, r?.r1 ?? 1, r?.r2 ?? 1], [groupSize(v), spec.eps, spec.momentum, spec.correction]),
        partials, stats, io.channelMean ?? this.#unusedWrite[1], io.channelVar ?? this.#unusedWrite[2],
      ],
      plan.finalize!.workgroups);

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
      const entry = plan.apply.vec4 ? `main_vec4_${l.kind}` : 'main';
      rec.dispatch(kernels.applyNorm(entry), {
        WG: APPLY_WG,
        // Folded planes already hold weight and bias.
        HAS_WEIGHT: affine.HAS_WEIGHT && !vec4Pixels, HAS_BIAS: affine.HAS_BIAS && !vec4Pixels,
        PARAM_PER_ROW: l.kind === 'planes', COLUMN_GROUPS: l.columnGroups,
      },
        [
          rec.uniform('apply-params', [
            elementCount(v), l.width, l.groupDiv, l.groupMod, l.groupMul, l.columnGroupDiv, l.paramDiv, l.paramMod, plane,
            plan.apply.tw,
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
