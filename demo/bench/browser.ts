/**
 * The benchmark as the browser runs it: every contender (the peers are loaded on demand, so
 * the rest of the demo does not pay for TF.js and ONNX Runtime), the workloads of a scope,
 * and a window hook that `npm run bench` drives through Puppeteer.
 */
import { runBenchmark, type BenchOptions, type BenchReport } from './runner';
import { allWorkloads, quickWorkloads, type Workload } from './workloads';
import { normgpuCpu, normgpuWebGpu } from './contenders/normgpu';
import type { ContenderFactory } from './contenders/types';

export type Scope = 'quick' | 'default' | 'full';

export const CONTENDER_IDS = ['normgpu', 'normgpu-cpu', 'tfjs', 'ort', 'ort-nchw'] as const;
export type ContenderId = (typeof CONTENDER_IDS)[number];

const lazy = (id: string, label: string, load: () => Promise<ContenderFactory>): ContenderFactory => ({
  id, label, create: async () => (await load()).create(),
});

export const FACTORIES: Record<ContenderId, ContenderFactory> = {
  normgpu: normgpuWebGpu,
  'normgpu-cpu': normgpuCpu,
  tfjs: lazy('tfjs', 'TF.js', async () => (await import('./contenders/tfjs')).tfjsWebGpu),
  ort: lazy('ort', 'ORT', async () => (await import('./contenders/ort')).ortWebGpu),
  'ort-nchw': lazy('ort-nchw', 'ORT (NCHW)', async () => (await import('./contenders/ort')).ortWebGpuNchw),
};

export function workloadsFor(scope: Scope, iterations?: number): Workload[] {
  if (scope === 'quick') return quickWorkloads(iterations ?? 10);
  return allWorkloads().filter((w) => scope === 'full' || w.tier === 'default');
}

export interface BrowserBenchOptions extends Partial<Omit<BenchOptions, 'contenders' | 'workloads'>> {
  scope?: Scope;
  contenders?: readonly ContenderId[];
  /** Only workloads whose id contains one of these strings. */
  filter?: readonly string[];
}

export async function adapterDescription(): Promise<string> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = await gpu?.requestAdapter();
  if (!adapter) return 'none';
  const i = adapter.info;
  return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'unknown';
}

export async function runBrowserBenchmark(o: BrowserBenchOptions = {}): Promise<BenchReport> {
  const scope = o.scope ?? 'default';
  let workloads = workloadsFor(scope, o.iterations);
  if (o.filter?.length) workloads = workloads.filter((w) => o.filter!.some((f) => w.id.includes(f)));
  const ids = o.contenders ?? CONTENDER_IDS;
  return runBenchmark({
    ...o,
    workloads,
    contenders: ids.map((id) => FACTORIES[id]),
    // The default run must finish in minutes on a software adapter: slow configurations get 3
    // timed calls, very slow ones are held for --full (which times everything 10x, 5x at the
    // largest shape).
    ...(scope === 'default' ? { slowCallMs: 250, slowIterations: 3, holdCallMs: 2000 } : {}),
    environment: {
      runner: 'browser',
      userAgent: navigator.userAgent,
      adapter: await adapterDescription(),
      hardwareConcurrency: String(navigator.hardwareConcurrency),
      scope,
      ...o.environment,
    },
  });
}

declare global {
  interface Window {
    /** Used by `npm run bench` (scripts/bench.ts) through Puppeteer. */
    normgpuBench?: {
      start(options: BrowserBenchOptions): void;
      state: { done: boolean; progress: string; log: string[]; report?: BenchReport; error?: string };
    };
  }
}

/** Install the hook `npm run bench` drives: start() returns at once, the state is polled. */
export function installBenchHook(): void {
  const state: NonNullable<Window['normgpuBench']>['state'] = { done: false, progress: '', log: [] };
  window.normgpuBench = {
    state,
    start(options) {
      Object.assign(state, { done: false, progress: '', log: [], report: undefined, error: undefined });
      runBrowserBenchmark({
        ...options,
        log: (line) => state.log.push(line),
        onProgress: (done, total, label) => { state.progress = `${done}/${total} ${label}`; },
      }).then(
        (report) => { state.report = report; state.done = true; },
        (e) => { state.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e); state.done = true; },
      );
    },
  };
}
