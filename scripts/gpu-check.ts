/**
 * `npm run bench:node -- --gpu-check`: one short run that says whether a machine's GPU gives
 * correct and fast results in Node through Dawn. In order, within a hard time budget:
 * 1. the adapter (and whether it is a software one);
 * 2. every golden accuracy set under test/ (`test/golden*` with a manifest.json), with the
 *    planner's kernels and with `kernels: 'parallel'` (the GPU-shaped family);
 * 3. a benchmark subset: each workload's normgpu time, xvec4 (time ÷ a vec4 copy of the same
 *    bytes), xfloor (time ÷ the op's access floor, accessFloor in demo/bench/workloads.ts), the
 *    plan's traffic ratio from `engine.explain` (bytes moved ÷ one read and one write: what
 *    xvec4 would be if bandwidth bound it), and the speed-up over the CPU backend.
 * The benchmark stops where the budget runs out (what it measured is still printed).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runGoldenSuite, type CaseResult, type GoldenCase, type GoldenManifest } from '../src/accuracy/runner';
import { createEngine, type Engine } from '../src/index';
import { normgpuCpu, normgpuWebGpu } from '../demo/bench/contenders/normgpu';
import { derive, fmtMs, fmtX } from '../demo/bench/format';
import { runBenchmark, type BenchReport } from '../demo/bench/runner';
import { GROUPS, makeWorkload, type Workload } from '../demo/bench/workloads';

/** Default hard budget of the whole check: 5 minutes. */
export const GPU_CHECK_BUDGET_S = 300;

/**
 * The benchmark subset: each op in both layouts at the smaller default shape, and the row ops,
 * 5 timed calls each (a few seconds on a GPU; minutes on a software adapter, where the budget
 * cuts it).
 */
export function gpuCheckWorkloads(): Workload[] {
  const ops = ['bnTrain', 'bnEval', 'layerNorm', 'instanceNorm', 'groupNorm', 'rmsNorm'] as const;
  const out: Workload[] = [];
  for (const layout of ['NCHW', 'NHWC'] as const) for (const op of ops) out.push(makeWorkload(op, layout, [8, 64, 56, 56], 'default', 5));
  for (const op of ['layerNorm', 'rmsNorm'] as const) out.push(makeWorkload(op, 'rows', [2048, 768], 'default', 5));
  return out;
}

export interface GpuCheckOptions {
  /** Repository root (the golden sets are under its test/). */
  root: string;
  /** Hard budget in seconds for the whole check. Default: GPU_CHECK_BUDGET_S. */
  budgetS?: number;
  /** Default: gpuCheckWorkloads(). */
  workloads?: Workload[];
  /** Golden set directories. Default: every test/golden* of `root` with a manifest.json. */
  golden?: string[];
  /** The golden cases to run. Default: all. */
  cases?: (c: GoldenCase) => boolean;
  log?: (line: string) => void;
}

export interface AccuracyLine {
  golden: string;
  kernels: 'auto' | 'parallel';
  passed: number;
  failed: number;
  unsupported: number;
  maxScaledError: number;
  failures: string[];
}

export interface BenchLine {
  id: string;
  ms: number | null;
  xvec4: number | null;
  /** normgpu ms ÷ the workload's access floor. */
  xfloor: number | null;
  traffic: number;
  /** CPU backend ms ÷ normgpu ms. */
  vsCpu: number | null;
  plan: string;
}

export interface GpuCheckReport {
  adapter: string;
  software: boolean;
  accuracy: AccuracyLine[];
  bench: BenchLine[];
  /** Workloads the budget left out. */
  notRun: string[];
  seconds: number;
  ok: boolean;
}

const LAYOUT = { NCHW: 'channels-first', NHWC: 'channels-last', rows: 'channels-first' } as const;

/** The golden sets under `root`/test: directories named golden* holding a manifest.json. */
async function goldenDirs(root: string): Promise<string[]> {
  const test = join(root, 'test');
  const names = (await readdir(test, { withFileTypes: true })).filter((d) => d.isDirectory() && d.name.startsWith('golden')).map((d) => d.name);
  const dirs: string[] = [];
  for (const n of names.sort()) {
    if (await readFile(join(test, n, 'manifest.json')).then(() => true, () => false)) dirs.push(join(test, n));
  }
  return dirs;
}

async function accuracy(engine: Engine, dir: string, kernels: 'auto' | 'parallel', wanted: (c: GoldenCase) => boolean): Promise<AccuracyLine> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as GoldenManifest;
  manifest.cases = manifest.cases.filter(wanted);
  const load = async (name: string) => {
    const b = await readFile(join(dir, name));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };
  const report = await runGoldenSuite(engine, manifest, load);
  const count = (pass: boolean | null) => report.cases.filter((c: CaseResult) => c.pass === pass).length;
  return {
    golden: dir, kernels, passed: count(true), failed: count(false), unsupported: count(null),
    maxScaledError: Math.max(0, ...report.cases.map((c) => c.maxScaledError ?? 0)),
    failures: report.cases.filter((c) => c.pass === false).map((c) => `${c.id}: ${c.reason ?? ''}`),
  };
}

/** The traffic ratio and plan of workload `w` from explain (a zero tensor of its shape). */
function planOf(engine: Engine, w: Workload): { traffic: number; plan: string } {
  const x = engine.tensor(new Float32Array(w.numel), w.storage, { layout: LAYOUT[w.layout] });
  const c = w.dims[1];
  const stats = { runningMean: new Float32Array(c), runningVar: new Float32Array(c).fill(1) };
  const options = w.op === 'groupNorm' ? { numGroups: GROUPS }
    : w.op === 'layerNorm' || w.op === 'rmsNorm' ? { normalizedShape: w.storage.slice(1) }
    : w.op === 'bnTrain' ? { training: true, ...stats } : w.op === 'bnEval' ? stats : {};
  const op = w.op === 'bnTrain' || w.op === 'bnEval' ? 'batchNorm' : w.op;
  const weight = new Float32Array(w.layout === 'rows' || op === 'layerNorm' || op === 'rmsNorm' ? w.numel / w.storage[0] : c);
  const e = engine.explain(op, x, { ...options, weight, ...(op === 'rmsNorm' ? {} : { bias: weight }) });
  x.dispose();
  return { traffic: e.traffic.ratio, plan: e.kernels.map((k) => `${k.stage}:${k.variant}`).join(' → ') };
}

export async function gpuCheck(o: GpuCheckOptions): Promise<GpuCheckReport> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const budgetMs = (o.budgetS ?? GPU_CHECK_BUDGET_S) * 1000;
  const left = () => budgetMs - (performance.now() - t0);

  const engine = await createEngine({ backend: 'webgpu' });
  const parallel = await createEngine({ backend: 'webgpu', kernels: 'parallel' });
  const a = engine.adapterInfo!;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ');
  log(`adapter: ${adapter}${a.software ? ' (software adapter: GPU figures will not mean much)' : ''}`);

  const lines: AccuracyLine[] = [];
  const bench: BenchLine[] = [];
  let notRun: string[] = [];
  try {
    for (const dir of o.golden ?? await goldenDirs(o.root)) {
      for (const [kernels, e] of [['auto', engine], ['parallel', parallel]] as const) {
        const l = await accuracy(e, dir, kernels, o.cases ?? (() => true));
        lines.push(l);
        log(`accuracy ${relative(o.root, dir)} (kernels ${kernels}): ${l.passed} passed, ${l.failed} failed, ${l.unsupported} unsupported; max scaled error ${l.maxScaledError.toExponential(2)}`);
        for (const f of l.failures) log(`  FAIL ${f}`);
      }
    }

    // The benchmark gets what the accuracy left, less a margin for the tables.
    const workloads = o.workloads ?? gpuCheckWorkloads();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(0, left() - 2000));
    let partial: BenchReport | null = null;
    try {
      partial = await runBenchmark({
        workloads, contenders: [normgpuWebGpu, normgpuCpu], signal: abort.signal, onResult: (r) => { partial = r; },
      });
    } catch (e) {
      if (!abort.signal.aborted) throw e;
    } finally {
      clearTimeout(timer);
    }
    const done = partial?.workloads ?? [];
    notRun = workloads.filter((w) => !done.some((d) => d.workload.id === w.id)).map((w) => w.id);
    for (const wr of done) {
      const d = derive(partial!, wr);
      const ms = wr.results.normgpu?.ms ?? null;
      const cpu = wr.results['normgpu-cpu']?.ms ?? null;
      bench.push({ id: wr.workload.id, ms, xvec4: d.xvec4.normgpu ?? null, xfloor: d.xfloor.normgpu ?? null, vsCpu: ms && cpu ? cpu / ms : null, ...planOf(engine, wr.workload) });
    }
  } finally {
    engine.dispose();
    parallel.dispose();
  }
  log('');
  log('| workload | normgpu ms | xvec4 | xfloor | traffic ÷ copy | CPU backend ÷ normgpu | plan |');
  log('|---|---:|---:|---:|---:|---:|---|');
  for (const b of bench) log(`| ${b.id} | ${fmtMs(b.ms)} | ${fmtX(b.xvec4)} | ${fmtX(b.xfloor)} | ${fmtX(b.traffic)} | ${fmtX(b.vsCpu)} | ${b.plan} |`);
  if (notRun.length) log(`not run (budget of ${budgetMs / 1000} s): ${notRun.join(', ')}`);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  const ok = lines.every((l) => l.failed === 0) && bench.every((b) => b.ms !== null);
  log(`gpu-check: ${ok ? 'OK' : 'FAILED'} in ${seconds} s`);
  return { adapter, software: a.software, accuracy: lines, bench, notRun, seconds, ok };
}
