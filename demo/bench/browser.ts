/**
 * The benchmark as the browser runs it: every contender (the peers are loaded on demand, so
 * the rest of the demo does not pay for TF.js and ONNX Runtime), the workloads of a scope,
 * and a window hook that `npm run bench` drives through Puppeteer.
 */
import { allChains } from './chains';
import { backwardCases } from './backward';
import { tfjsGrad } from './backward-tfjs';
import { runBenchmark, type BenchOptions, type BenchReport } from './runner';
import { allWorkloads, quickWorkloads, type Workload } from './workloads';
import { normgpuCpu, normgpuWebGpu } from './contenders/normgpu';
import type { ContenderFactory } from './contenders/types';

export type Scope = 'quick' | 'default' | 'full';

export const CONTENDER_IDS = ['normgpu', 'normgpu-cpu', 'tfjs', 'ort-jsep', 'ort-jsep-nchw', 'ort-webgpu', 'ort-webgpu-nchw'] as const;
export type ContenderId = (typeof CONTENDER_IDS)[number];

const lazy = (id: string, label: string, load: () => Promise<ContenderFactory>): ContenderFactory => ({
  id, label, create: async () => (await load()).create(),
});

export const FACTORIES: Record<ContenderId, ContenderFactory> = {
  normgpu: normgpuWebGpu,
  'normgpu-cpu': normgpuCpu,
  tfjs: lazy('tfjs', 'TF.js', async () => (await import('./contenders/tfjs')).tfjsWebGpu),
  // ONNX Runtime Web's two WebGPU builds: separate module graphs and wasm runtimes, one page.
  'ort-jsep': lazy('ort-jsep', 'ORT JSEP', async () => (await import('./contenders/ort-jsep')).ortJsep),
  'ort-jsep-nchw': lazy('ort-jsep-nchw', 'ORT JSEP (NCHW)', async () => (await import('./contenders/ort-jsep')).ortJsepNchw),
  'ort-webgpu': lazy('ort-webgpu', 'ORT native', async () => (await import('./contenders/ort-webgpu')).ortNative),
  'ort-webgpu-nchw': lazy('ort-webgpu-nchw', 'ORT native (NCHW)', async () => (await import('./contenders/ort-webgpu')).ortNativeNchw),
};

export function workloadsFor(scope: Scope, iterations?: number): Workload[] {
  if (scope === 'quick') return quickWorkloads(iterations ?? 10);
  return allWorkloads().filter((w) => scope === 'full' || w.tier === 'default');
}

export interface BrowserBenchOptions extends Partial<Omit<BenchOptions, 'contenders' | 'workloads' | 'chains'>> {
  scope?: Scope;
  contenders?: readonly ContenderId[];
  /** Only workloads (and small-op chains) whose id contains one of these strings. */
  filter?: readonly string[];
  /** Also time the small-op chains, when normgpu runs. Default false (the demo tab has no table for them). */
  chains?: boolean;
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
  const wanted = (id: string) => !o.filter?.length || o.filter.some((f) => id.includes(f));
  const workloads = workloadsFor(scope, o.iterations).filter((w) => wanted(w.id));
  const ids = o.contenders ?? CONTENDER_IDS;
  return runBenchmark({
    ...o,
    workloads,
    contenders: ids.map((id) => FACTORIES[id]),
    chains: o.chains && ids.includes('normgpu') ? allChains(o.iterations).filter((c) => wanted(c.id)) : [],
    // Backward passes (ids `backward/...`: `--filter backward` runs only them and the workloads that match).
    backward: ids.includes('normgpu') ? backwardCases(scope, o.iterations).filter((c) => wanted(c.id)) : [],
    backwardTfjs: ids.includes('tfjs') ? tfjsGrad : undefined,
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
