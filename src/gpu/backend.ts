import type { Storage } from '../api/tensor';
import type { Backend, KernelChoice, NormOperands } from '../backend';
import { planGpu, linearGrid, REDUCE_WG, SERIAL_WG, APPLY_WG, type AdapterTraits, type GpuPlan } from '../plan/gpu-plan';
import type { NormSpec } from '../plan/spec';
import { elementCount, groupCount, groupSize } from '../plan/view';
import { BufferPool } from './buffer-pool';
import type { AcquiredDevice, AdapterSummary } from './device';
import { kernels } from './kernels';
import { BufferUsage, MAP_READ, STAGING_USAGE, STORAGE_USAGE } from './flags';
import { Recorder } from './recorder';

const MODE = { batch: 0, running: 1, rms: 2, moments: 3 } as const;

const bufferOf = (s: Storage): GPUBuffer => {
  if (s.kind !== 'gpu') throw new Error('internal: CPU storage given to the WebGPU backend');
  return s.buffer;
};

/**
 * Executes plans on one GPUDevice: all stages of a call go into one command encoder and one
 * submit; temporaries come from the pool and go back right after the submit.
 */
export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly device: GPUDevice;
  readonly info: AdapterSummary;
  readonly traits: AdapterTraits;
  readonly pool: BufferPool;
  readonly #owned: boolean;
  /** @internal Dawn's GPU object in Node, held so V8 cannot collect it while the device lives. */
  readonly keepAlive: unknown;
  // Bound where a stage's optional operand is absent. Writable bindings may not alias each
  // other, so each writable slot has its own spare.
  readonly #unusedRead: GPUBuffer;
  readonly #unusedWrite: [GPUBuffer, GPUBuffer, GPUBuffer];

  constructor(acquired: AcquiredDevice, prefer: AdapterTraits['prefer']) {
    this.device = acquired.device;
    this.info = acquired.info;
    this.#owned = acquired.owned;
    this.keepAlive = acquired.keepAlive;
    this.pool = new BufferPool(this.device);
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
  }

  upload(data: Float32Array): Storage {
    const buffer = this.pool.acquire(data.byteLength, STORAGE_USAGE, 'normgpu:tensor');
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return { kind: 'gpu', buffer, owned: true };
  }

  async readStorage(storage: Storage, size: number): Promise<Float32Array> {
    const [data] = await this.readBuffers([{ buffer: bufferOf(storage), bytes: size * 4 }]);
    return data;
  }

  /**
   * Copy several buffer prefixes into one staging buffer and map it once. The copies are
   * submitted before this returns its promise, so the sources may be released right away.
   */
  readBuffers(parts: readonly { buffer: GPUBuffer; bytes: number }[]): Promise<Float32Array[]> {
    const total = Math.max(4, parts.reduce((s, p) => s + p.bytes, 0));
    const staging = this.pool.acquire(total, STAGING_USAGE, 'normgpu:readback');
    const encoder = this.device.createCommandEncoder({ label: 'normgpu:readback' });
    let offset = 0;
    for (const p of parts) {
      encoder.copyBufferToBuffer(p.buffer, 0, staging, offset, p.bytes);
      offset += p.bytes;
    }
    this.device.queue.submit([encoder.finish()]);
    return (async () => {
      await staging.mapAsync(MAP_READ, 0, total);
      const all = new Float32Array(staging.getMappedRange(0, total).slice(0));
      staging.unmap();
      this.pool.release(staging);
      let at = 0;
      return parts.map((p) => {
        const a = all.subarray(at / 4, (at + p.bytes) / 4);
        at += p.bytes;
        return a;
      });
    })();
  }

  releaseStorage(storage: Storage): void {
    if (storage.kind === 'gpu' && storage.owned) this.pool.release(storage.buffer);
  }

  plan(spec: NormSpec): GpuPlan {
    return planGpu(spec, this.traits);
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
    const count = elementCount(spec.view);
    const y = this.pool.acquire(count * 4, STORAGE_USAGE, `normgpu:${spec.op}:output`);
    this.#run(spec, ops.x, {
      channelMean: ops.runningMean && bufferOf(ops.runningMean),
      channelVar: ops.runningVar && bufferOf(ops.runningVar),
      weight: ops.weight && bufferOf(ops.weight),
      bias: ops.bias && bufferOf(ops.bias),
      y,
    });
    return { kind: 'gpu', buffer: y, owned: true };
  }

  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage } {
    const bytes = groupCount(spec.view) * 4;
    const mean = this.pool.acquire(bytes, STORAGE_USAGE, 'normgpu:moments:mean');
    const variance = this.pool.acquire(bytes, STORAGE_USAGE, 'normgpu:moments:variance');
    this.#run(spec, x, { channelMean: mean, channelVar: variance });
    return { mean: { kind: 'gpu', buffer: mean, owned: true }, variance: { kind: 'gpu', buffer: variance, owned: true } };
  }

  #run(spec: NormSpec, x: Storage, io: {
    channelMean?: GPUBuffer; channelVar?: GPUBuffer; weight?: GPUBuffer; bias?: GPUBuffer; y?: GPUBuffer;
  }): void {
    const plan = this.plan(spec);
    const v = spec.view;
    const rec = this.recorder(`normgpu:${spec.op}`);
    const xBuf = bufferOf(x);
    const square = spec.mode === 'rms';
    if (plan.fused?.kernel === 'rows' && io.y) {
      rec.dispatch(kernels.normalizeRows(this.traits.subgroups, plan.fused.entry), {
        WG: REDUCE_WG, SQUARE: square, HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias,
      }, [
        rec.uniform('rows-params', [groupCount(v), v.q, v.s, spec.paramQ, spec.paramS], [spec.eps]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
      ], plan.fused.workgroups);
      rec.submit();
      return;
    }
    if (plan.fused && io.y) {
      rec.dispatch(kernels.normalizeSerial(plan.fused.entry), {
        WG: SERIAL_WG, MODE: MODE[spec.mode], SQUARE: square, UPDATE_RUNNING: spec.updateRunning,
        HAS_WEIGHT: !!io.weight, HAS_BIAS: !!io.bias,
      }, [
        rec.uniform('serial-params', [v.o, v.p, v.q, v.s, spec.paramQ, spec.paramS], [spec.eps, spec.momentum]),
        xBuf, io.weight ?? this.#unusedRead, io.bias ?? this.#unusedRead, io.y,
        io.channelMean ?? this.#unusedWrite[1], io.channelVar ?? this.#unusedWrite[2],
      ], plan.fused.workgroups);
      rec.submit();
      return;
    }

    let partials = this.#unusedRead;
    const r = plan.reduce;
    if (r) {
      partials = rec.temp(r.partials * 16, BufferUsage.STORAGE, 'partials');
      const view = [r.view.o, r.view.p, r.view.q, r.view.s];
      if (r.variant === 'serial') {
        rec.dispatch(kernels.reduceStatsSerial, { WG: SERIAL_WG, SQUARE: square },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), xBuf, partials], r.workgroups);
      } else if (r.variant === 'columns') {
        rec.dispatch(kernels.reduceStatsColumns, { WG: REDUCE_WG, SQUARE: square },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks, r.tx]), xBuf, partials], r.workgroups);
      } else {
        rec.dispatch(kernels.reduceStats(this.traits.subgroups), { WG: REDUCE_WG, SQUARE: square },
          [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), xBuf, partials], r.workgroups);
      }
    }

    const stats = spec.mode === 'moments' ? this.#unusedWrite[0] : rec.temp(groupCount(v) * 16, BufferUsage.STORAGE, 'stats');
    rec.dispatch(kernels.finalizeStats, { WG: SERIAL_WG, MODE: MODE[spec.mode], UPDATE_RUNNING: spec.updateRunning },
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
        table = rec.temp(entries * 16, BufferUsage.STORAGE, 'affine-planes');
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
    rec.submit();
  }

  /** A recorder for one call's stages on this device (see Recorder). */
  recorder(label: string): Recorder {
    return new Recorder(this.device, this.pool, label);
  }

  dispose(): void {
    this.pool.trim();
    for (const b of [this.#unusedRead, ...this.#unusedWrite]) b.destroy();
    if (this.#owned) this.device.destroy();
  }
}
