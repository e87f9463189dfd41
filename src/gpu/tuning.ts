/**
 * Autotuning on one device: times the candidate kernel families of a call's shape class
 * (src/plan/tuning.ts) once and records the winner in the engine's table, which later calls of
 * the class plan with.
 *
 * Timing: GPU timestamps around the call's passes where the device has 'timestamp-query',
 * else the wall clock from submit to `onSubmittedWorkDone`. Each candidate runs once to warm
 * up, then up to TIMED_RUNS times, round-robin over the candidates, on scratch buffers of the
 * call's shape (deterministic data, no affine): results of the user's tensors are never
 * touched. The cost is bounded: no run starts once `budgetMs` have passed since the class's
 * tuning began (pipeline compilation included), so tuning a class costs at most `budgetMs`
 * plus one run of its slowest candidate. Classes are tuned one at a time.
 */
import type { AdapterTraits, GpuPlan } from '../plan/gpu-plan';
import type { NormSpec } from '../plan/spec';
import {
  shapeClass, tuningCandidates, type KernelFamily, type Tuner, type TunerConfig, type TuningChoice, type TuningEntry,
} from '../plan/tuning';
import { elementCount, groupCount } from '../plan/view';
import { BufferUsage, MAP_READ, STAGING_USAGE, STORAGE_USAGE } from '../webgpu-flags';
import { guardScopes } from './faults';

/** Timed runs per candidate after its warm-up. */
export const TIMED_RUNS = 3;

/** Scratch operands of a trial run (see `TrialHost.recordTrial`). */
export interface TrialBuffers {
  x: GPUBuffer;
  y: GPUBuffer;
  /** Running statistics (read, or updated in place) or the moments' outputs. */
  mean: GPUBuffer;
  variance: GPUBuffer;
}

/** What the tuner needs from the backend. */
export interface TrialHost {
  readonly device: GPUDevice;
  /** The adapter's traits with the user's `kernels` choice. */
  readonly traits: AdapterTraits;
  /** Not disposed and the device not lost. */
  usable(): boolean;
  /** Compile the pipelines of `spec` planned as `plan`. */
  preparePlan(spec: NormSpec, plan: GpuPlan): Promise<void>;
  /** Record one call of `spec` planned as `plan` on `buffers` into `encoder`; the result releases its temporaries. */
  recordTrial(encoder: GPUCommandEncoder, spec: NormSpec, plan: GpuPlan, buffers: TrialBuffers): () => void;
}

const now = () => performance.now();

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The table's adapter key: vendor, architecture, device and description. */
export function adapterKey(info: { vendor: string; architecture: string; device: string; description: string }): string {
  return [info.vendor, info.architecture, info.device, info.description].join('/');
}

export class GpuTuner implements Tuner {
  readonly #host: TrialHost;
  readonly #config: TunerConfig;
  readonly #adapter: string;
  /** Classes being measured, and the chain that runs them one at a time. */
  readonly #pending = new Map<string, Promise<void>>();
  #queue: Promise<void> = Promise.resolve();
  /** Traits per family, so planning allocates nothing. */
  readonly #traits = new Map<KernelFamily, AdapterTraits>();

  constructor(host: TrialHost, adapter: string, config: TunerConfig) {
    this.#host = host;
    this.#adapter = adapter;
    this.#config = config;
  }

  choice(spec: NormSpec): TuningChoice | null {
    if (this.#host.traits.prefer !== 'auto') return null;
    const key = shapeClass(spec);
    const hit = this.#config.table.get(this.#adapter, key);
    if (hit) return { key, variant: hit.entry.variant, source: hit.source, entry: hit.entry };
    return { key, variant: 'auto', source: this.#pending.has(key) ? 'pending' : 'untuned' };
  }

  /** The traits a call of `spec` plans with: the user's, or the family its class's entry names. */
  traitsFor(spec: NormSpec): AdapterTraits {
    const variant = this.choice(spec)?.variant ?? this.#host.traits.prefer;
    let t = this.#traits.get(variant);
    if (!t) {
      t = { ...this.#host.traits, prefer: variant };
      this.#traits.set(variant, t);
    }
    return t;
  }

  use(spec: NormSpec): void {
    if (this.#wanted(spec)) void this.tune(spec);
  }

  tune(spec: NormSpec): Promise<void> {
    if (!this.#wanted(spec)) return this.#pending.get(shapeClass(spec)) ?? Promise.resolve();
    const key = shapeClass(spec);
    const done = this.#queue.then(async () => {
      const entry = await this.#measure(spec).catch(() => null);
      if (entry) {
        this.#config.table.set(this.#adapter, key, entry);
        this.#config.onTuned?.();
      }
    }).finally(() => this.#pending.delete(key));
    this.#pending.set(key, done);
    this.#queue = done;
    return done;
  }

  /** Autotune is on, kernels are not forced, and the class has neither an entry nor a measurement under way. */
  #wanted(spec: NormSpec): boolean {
    if (!this.#config.autotune || this.#host.traits.prefer !== 'auto') return false;
    const key = shapeClass(spec);
    return !this.#pending.has(key) && !this.#config.table.get(this.#adapter, key);
  }

  async #measure(spec: NormSpec): Promise<TuningEntry | null> {
    const start = now();
    const host = this.#host;
    const candidates = tuningCandidates(spec, { ...host.traits, prefer: 'auto' });
    const shape = `[${spec.view.o},${spec.view.p},${spec.view.q},${spec.view.s}]`;
    const timestamps = host.device.features.has('timestamp-query');
    const timer = timestamps ? 'timestamp' : 'wall';
    if (candidates.length === 1) return { variant: 'auto', ms: {}, timer, runs: 0, shape, truncated: false };
    await Promise.all(candidates.map((c) => host.preparePlan(spec, c.plan)));
    if (!host.usable()) return null;
    const trial = new Trial(host, spec, timestamps);
    const warm: (number | undefined)[] = [];
    const timed: number[][] = candidates.map(() => []);
    let truncated = false;
    try {
      rounds: for (let round = 0; round <= TIMED_RUNS; round++) {
        for (let i = 0; i < candidates.length; i++) {
          if (now() - start > this.#config.budgetMs || !host.usable()) {
            truncated = true;
            break rounds;
          }
          const ms = await trial.run(candidates[i].plan);
          if (ms === null) return null;
          if (round === 0) warm[i] = ms;
          else timed[i].push(ms);
        }
      }
    } finally {
      trial.dispose();
    }
    // Timed runs decide; warm-ups only when the budget allowed none.
    const useWarm = timed.every((t) => t.length === 0);
    const ms: TuningEntry['ms'] = {};
    let best: KernelFamily = 'auto';
    let bestMs = Infinity;
    candidates.forEach((c, i) => {
      const samples = useWarm ? (warm[i] === undefined ? [] : [warm[i]!]) : timed[i];
      if (!samples.length) return;
      const m = median(samples);
      ms[c.variant] = m;
      if (m < bestMs) {
        bestMs = m;
        best = c.variant;
      }
    });
    return { variant: best, ms, timer, runs: timed.reduce((s, t) => s + t.length, 0), shape, truncated };
  }
}

/** Scratch buffers and timing of one class's trial runs. */
class Trial {
  readonly #host: TrialHost;
  readonly #spec: NormSpec;
  readonly #buffers: TrialBuffers;
  readonly #query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | null;

  constructor(host: TrialHost, spec: NormSpec, timestamps: boolean) {
    this.#host = host;
    this.#spec = spec;
    const d = host.device;
    const n = elementCount(spec.view);
    const groups = groupCount(spec.view);
    const filled = (count: number, label: string, value: (i: number) => number) => {
      const b = d.createBuffer({ label: `normgpu:autotune:${label}`, size: Math.max(16, count * 4), usage: STORAGE_USAGE, mappedAtCreation: true });
      const f = new Float32Array(b.getMappedRange());
      for (let i = 0; i < count; i++) f[i] = value(i);
      b.unmap();
      return b;
    };
    // Plain data of unit spread (no rescue passes), unit running variances.
    this.#buffers = {
      x: filled(n, 'x', (i) => ((i * 2654435761) % 4096) / 2048 - 1),
      y: d.createBuffer({ label: 'normgpu:autotune:y', size: Math.max(16, n * 4), usage: STORAGE_USAGE }),
      mean: filled(groups, 'mean', () => 0),
      variance: filled(groups, 'variance', () => 1),
    };
    this.#query = timestamps ? {
      set: d.createQuerySet({ label: 'normgpu:autotune', type: 'timestamp', count: 2 }),
      resolve: d.createBuffer({ label: 'normgpu:autotune:timestamps', size: 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }),
      read: d.createBuffer({ label: 'normgpu:autotune:timestamps-read', size: 16, usage: STAGING_USAGE }),
    } : null;
  }

  /** Milliseconds of one run of `plan`, or null when the GPU reported an error. */
  async run(plan: GpuPlan): Promise<number | null> {
    const d = this.#host.device;
    const q = this.#query;
    let release = () => {};
    const t0 = now();
    const { fault } = guardScopes(d, 'normgpu:autotune', () => {
      const encoder = d.createCommandEncoder({ label: 'normgpu:autotune' });
      // Empty passes whose timestamps bracket the call's passes.
      if (q) encoder.beginComputePass({ timestampWrites: { querySet: q.set, beginningOfPassWriteIndex: 0 } }).end();
      release = this.#host.recordTrial(encoder, this.#spec, plan, this.#buffers);
      if (q) {
        encoder.beginComputePass({ timestampWrites: { querySet: q.set, endOfPassWriteIndex: 1 } }).end();
        encoder.resolveQuerySet(q.set, 0, 2, q.resolve, 0);
        encoder.copyBufferToBuffer(q.resolve, 0, q.read, 0, 16);
      }
      d.queue.submit([encoder.finish()]);
    });
    await d.queue.onSubmittedWorkDone();
    const wall = now() - t0;
    release();
    if (await fault) return null;
    if (!q) return wall;
    await q.read.mapAsync(MAP_READ);
    const [begin, end] = new BigInt64Array(q.read.getMappedRange());
    q.read.unmap();
    const ms = Number(end - begin) / 1e6;
    // Implementations may report 0 (quantized or unsupported in passes): keep the wall clock then.
    return ms > 0 ? ms : wall;
  }

  dispose(): void {
    for (const b of Object.values(this.#buffers)) b.destroy();
    if (this.#query) {
      this.#query.set.destroy();
      this.#query.resolve.destroy();
      this.#query.read.destroy();
    }
  }
}

