/**
 * The benchmark run, shared by the demo's Benchmark tab, `npm run bench` (headless Chromium)
 * and `npm run bench:node` (Dawn): ceilings at the start, every workload with its contenders
 * interleaved iteration by iteration, the small-op chains (chains.ts), ceilings again at the end.
 * The ceilings include the access floors' kernels (read, scale, affine, and all four parts
 * looped: ceilings.ts).
 *
 * Per workload: each contender is prepared (inputs uploaded once, sessions built), warmed up,
 * checked against normgpu's float64 CPU reference, then timed `iterations` times in turns;
 * GPU contenders are then timed a few more times with the readback included.
 */
import { measureCeilings, type CeilingResult } from './ceilings';
import { runChains, type Chain, type ChainResult } from './chains';
import { runBackward, type BackwardCase, type BackwardResult, type TfjsGrad } from './backward';
import { GpuTimer, median, timeWall } from './timer';
import { makeData, normalizedLength, type Workload } from './workloads';
import type { Contender, ContenderFactory, Prepared } from './contenders/types';
import { callOp, uploadData } from './contenders/normgpu';
import { createEngine } from '../../src/index';

/** A full garbage collection where the runtime exposes one (Chromium and Node started with --expose-gc), else nothing. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export interface ContenderResult {
  /** Median ms (GPU timestamps, or wall for the CPU contender / without timestamps). */
  ms: number | null;
  /** Median wall ms from the call to onSubmittedWorkDone. */
  wallMs: number | null;
  /** Median wall ms of the call plus reading the output to the host (GPU contenders). */
  readMs: number | null;
  samples: number[];
  method: 'timestamp' | 'wall' | null;
  /** Max |y - reference| over the output. */
  maxError: number | null;
  /** Timed iterations behind `ms`. */
  iterations: number;
  /** Set when the configuration was too slow for this scope's budget and was not timed. */
  held?: string;
  /** Set when the contender does not run this workload because another column covers it. */
  skipped?: string;
  note?: string;
  error?: string;
}

export interface WorkloadResult {
  workload: Workload;
  results: Record<string, ContenderResult>;
}

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  environment: Record<string, string>;
  contenders: { id: string; label: string; kind: 'gpu' | 'cpu'; info: Record<string, string>; error?: string }[];
  /** Copy ceilings and access-floor parts per size, at the start and the end of the run. */
  ceilings: { start: CeilingResult[]; end: CeilingResult[] };
  workloads: WorkloadResult[];
  /** Small-op chains, batched vs one submit per op (normgpu only). */
  chains: ChainResult[];
  /** Backward passes vs TF.js and the vec4 copy (backward.ts); absent when none ran. */
  backward?: BackwardResult[];
}

export interface BenchOptions {
  workloads: Workload[];
  contenders: ContenderFactory[];
  /** Small-op chains to time on normgpu after the workloads. Default none. */
  chains?: readonly Chain[];
  /** Backward cases to time after the chains, with TF.js's side where it runs. Default none. */
  backward?: readonly BackwardCase[];
  backwardTfjs?: () => Promise<TfjsGrad | null>;
  /** Warm-up calls before timing: 1, and a 2nd when the 1st was slow (compilation). Default 2. */
  warmup?: number;
  /** Overrides each workload's iteration count. */
  iterations?: number;
  readIterations?: number;
  ceilingIterations?: number;
  /** Skip the CPU contender above this many elements (it only times the reference). */
  cpuMaxNumel?: number;
  environment?: Record<string, string>;
  onProgress?: (done: number, total: number, label: string) => void;
  log?: (line: string) => void;
  /** Called after each workload with the partial report (live tables). */
  onResult?: (report: BenchReport) => void;
  signal?: AbortSignal;
  /**
   * Time budget: a configuration whose warm-up call takes at least `slowCallMs` is timed
   * `slowIterations` times instead of the workload's count, one that takes `holdCallMs` is not
   * timed (its output is still checked). Default: no limits.
   */
  slowCallMs?: number;
  slowIterations?: number;
  holdCallMs?: number;
  /** Time the readback column for every GPU contender, not only normgpu. */
  readbackAll?: boolean;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);

function maxAbsError(y: Float32Array, ref: Float32Array): number {
  if (y.length < ref.length) return Infinity;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(y[i] - ref[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

const emptyResult = (error?: string, note?: string): ContenderResult => ({
  ms: null, wallMs: null, readMs: null, samples: [], iterations: 0, method: null, maxError: null, error, note,
});

export async function runBenchmark(opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const warmup = opts.warmup ?? 2;
  const readIterations = opts.readIterations ?? 3;
  const slowCallMs = opts.slowCallMs ?? Infinity;
  const slowIterations = opts.slowIterations ?? 3;
  const holdCallMs = opts.holdCallMs ?? Infinity;
  const report: BenchReport = {
    version: 1,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    seconds: 0,
    environment: { ...opts.environment },
    contenders: [],
    ceilings: { start: [], end: [] },
    workloads: [],
    chains: [],
  };

  // The reference: normgpu's float64 CPU backend.
  const reference = await createEngine({ backend: 'cpu' });
  const live: { c: Contender; timer: GpuTimer | null }[] = [];
  for (const f of opts.contenders) {
    try {
      const c = await f.create();
      live.push({ c, timer: c.device ? new GpuTimer(c.device) : null });
      report.contenders.push({ id: c.id, label: c.label, kind: c.device ? 'gpu' : 'cpu', info: c.info });
      log(`contender ${c.label}: ${Object.entries(c.info).map(([k, v]) => `${k}=${v}`).join('; ')}`);
    } catch (e) {
      report.contenders.push({ id: f.id, label: f.label, kind: 'gpu', info: {}, error: errorText(e) });
      log(`contender ${f.label} failed to start: ${errorText(e)}`);
    }
  }
  const ceilingTimer = live.find((l) => l.c.id === 'normgpu')?.timer ?? live.find((l) => l.timer)?.timer ?? null;
  // One entry per size, ascending; the floors' parameter length P is the first such workload's
  // normalized length (one sample's [C,H,W], or a row).
  const paramLengths = new Map<number, number>();
  for (const w of opts.workloads) if (!paramLengths.has(w.numel)) paramLengths.set(w.numel, normalizedLength(w));
  const sizes = [...paramLengths].sort((a, b) => a[0] - b[0]);
  const total = opts.workloads.length + (opts.chains?.length ?? 0) + (ceilingTimer ? 2 * sizes.length : 0);
  let done = 0;
  const step = (label: string) => opts.onProgress?.(done++, total, label);

  const ceilings = async (into: CeilingResult[], when: string) => {
    if (!ceilingTimer) return;
    for (const [numel, paramLength] of sizes) {
      step(`ceilings (${when}) ${numel.toLocaleString('en-US')} floats`);
      into.push(await measureCeilings(ceilingTimer, numel, opts.ceilingIterations ?? 10, { paramLength }));
    }
  };

  try {
    await ceilings(report.ceilings.start, 'start');
    for (const w of opts.workloads) {
      if (opts.signal?.aborted) throw new Error('benchmark aborted');
      step(w.id);
      const data = makeData(w);
      // Reference output (float64 CPU backend; inputs are copies so in-place updates don't leak).
      const rt = uploadData(reference, w, data);
      const ref = await callOp(reference, w, rt).read();
      for (const t of Object.values(rt)) t?.dispose();

      const results: Record<string, ContenderResult> = {};
      type Ready = { c: Contender; timer: GpuTimer | null; p: Prepared; r: ContenderResult; want: number };
      const ready: Ready[] = [];
      const once = async (timer: GpuTimer | null, p: Prepared) => {
        if (timer) {
          // An unusable timestamp pair (rare; seen as equal begin and end) gets one retry.
          const t = await timer.time(() => p.run(), () => p.flush?.());
          return t.method === 'wall' && timer.timestamps ? timer.time(() => p.run(), () => p.flush?.()) : t;
        }
        const ms = await timeWall(() => p.run());
        // A CPU contender allocates its float64 work afresh each call; collect it now, outside
        // any timing, or V8's concurrent collection takes a core from the next contender's call.
        collectGarbage();
        return { ms, wallMs: ms, method: 'wall' as const };
      };
      const iterations = opts.iterations ?? w.iterations;
      for (const { c, timer } of live) {
        const skipped = c.skip?.(w);
        if (skipped) {
          results[c.id] = { ...emptyResult(), skipped };
          continue;
        }
        const why = c.unsupported?.(w) ?? (!c.device && opts.cpuMaxNumel !== undefined && w.numel > opts.cpuMaxNumel ? `CPU contender skipped above ${opts.cpuMaxNumel} elements` : null);
        if (why) {
          results[c.id] = emptyResult(why);
          continue;
        }
        let p: Prepared | undefined;
        try {
          p = await c.prepare(w, data);
          const r = emptyResult(undefined, p.note);
          // Warm-up (pipelines, uploads); the last warm-up call decides whether the
          // configuration is too slow for this scope's time budget.
          // normgpu's own contenders are always timed in full: the budget is for peers.
          const exempt = c.id.startsWith('normgpu');
          let last = 0;
          for (let i = 0; i < Math.max(1, warmup); i++) {
            last = (await once(timer, p)).wallMs;
            if (last < slowCallMs) break;
          }
          if (exempt) last = 0;
          r.maxError = maxAbsError(await p.read(), ref);
          results[c.id] = r;
          if (last >= holdCallMs) {
            r.held = `one call took ${(last / 1000).toFixed(1)} s: timed only with --full`;
            log(`${w.id} ${c.label}: held (${r.held})`);
            p.release();
            continue;
          }
          const want = last >= slowCallMs ? Math.min(slowIterations, iterations) : iterations;
          ready.push({ c, timer, p, r, want });
        } catch (e) {
          p?.release();
          results[c.id] = emptyResult(errorText(e), p?.note);
          log(`${w.id} ${c.label}: ${errorText(e)}`);
        }
      }

      // Timed iterations, contenders interleaved; the starting contender rotates.
      const samples = new Map(ready.map((x) => [x.c.id, { ms: [] as number[], wall: [] as number[], method: 'timestamp' as 'timestamp' | 'wall' }]));
      for (let i = 0; i < iterations; i++) {
        for (let k = 0; k < ready.length; k++) {
          const { c, timer, p, r, want } = ready[(i + k) % ready.length];
          if (r.error || i >= want) continue;
          const s = samples.get(c.id)!;
          try {
            const t = await once(timer, p);
            s.ms.push(t.ms);
            s.wall.push(t.wallMs);
            if (t.method === 'wall') s.method = 'wall';
          } catch (e) {
            r.error = errorText(e);
          }
        }
      }
      // Readback column (normgpu): the call plus copying the output to the host, wall clock.
      const reads = new Map<string, number[]>(ready.map((x) => [x.c.id, []]));
      for (let i = 0; i < readIterations; i++) {
        for (const { c, timer, p, r } of ready) {
          if (!timer || r.error || (c.id !== 'normgpu' && !opts.readbackAll)) continue;
          try {
            const ms = await timeWall(async () => {
              await p.run();
              p.flush?.();
              await p.read();
            });
            reads.get(c.id)!.push(ms);
          } catch (e) {
            r.error = errorText(e);
          }
        }
      }
      for (const { c, p, r } of ready) {
        const s = samples.get(c.id)!;
        const readMs = reads.get(c.id)!;
        r.samples = s.ms.map((v) => Math.round(v * 1000) / 1000);
        r.iterations = s.ms.length;
        r.ms = s.ms.length ? median(s.ms) : null;
        r.wallMs = s.wall.length ? median(s.wall) : null;
        r.readMs = readMs.length ? median(readMs) : null;
        r.method = s.ms.length ? s.method : null;
        p.release();
      }
      report.workloads.push({ workload: { ...w, iterations }, results });
      const line = live.map(({ c }) => {
        const r = results[c.id];
        return `${c.label}=${r?.ms != null ? r.ms.toFixed(2) + 'ms' : 'n/a'}`;
      }).join(' ');
      log(`${w.id}: ${line}`);
      opts.onResult?.(report);
    }
    report.chains = await runChains(opts.chains ?? [], reference, (c) => step(c.id));
    for (const c of report.chains) {
      log(c.error ? `${c.id}: ${c.error}` : `${c.id}: ${c.batched!.msPerOp.toFixed(3)} ms/op batched (${c.batched!.submits} submit), ${c.perOp!.msPerOp.toFixed(3)} ms/op with ${c.perOp!.submits} submits: ${c.ratio!.toFixed(2)}x`);
    }
    if (opts.backward?.length) {
      step('backward');
      report.backward = await runBackward(opts.backward, (await opts.backwardTfjs?.()) ?? null, log);
    }
    opts.onResult?.(report);
    await ceilings(report.ceilings.end, 'end');
    step('done');
  } finally {
    for (const { c, timer } of live) {
      timer?.destroy();
      c.dispose();
    }
    reference.dispose();
  }
  report.finishedAt = new Date().toISOString();
  report.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return report;
}
