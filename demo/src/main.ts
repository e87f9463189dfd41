/**
 * The normgpu demo page: Playground, Layer explorer, Benchmark, Dataset statistics and Interop tabs over one engine.
 * The engine is WebGPU where the browser has it and the CPU backend otherwise (with a notice);
 * `?backend=cpu` forces the CPU backend.
 */
import './style.css';
import { createEngine, type Engine } from '../../src/index';
import { installBenchHook } from '../bench/browser';
import { mountBenchmark } from './bench-tab';
import type { DemoContext } from './context';
import { mountDataset } from './dataset';
import { el } from './draw';
import { mountExplorer } from './explorer';
import { mountInterop } from './interop';
import { mountPlayground } from './playground';
import { mountTrain } from './train-tab';

declare global {
  interface Window {
    /** State the e2e test reads: readiness, backend, each tab's latest result, and the tabs' hooks. */
    demo?: {
      ready: boolean; backend: string; adapter: string; notice: string | null; results: Record<string, unknown>;
      hooks: Record<string, () => unknown>; error?: string;
    };
  }
}

async function makeEngine(): Promise<{ engine: Engine; notice: string | null }> {
  const forced = new URLSearchParams(location.search).get('backend') === 'cpu';
  if (forced) return { engine: await createEngine({ backend: 'cpu' }), notice: 'CPU backend forced by ?backend=cpu: normgpu runs its float64 reference kernels on the CPU.' };
  if (!('gpu' in navigator)) {
    return { engine: await createEngine({ backend: 'cpu' }), notice: 'This browser has no WebGPU (navigator.gpu is missing): normgpu runs on its CPU backend instead. Try a recent Chrome or Edge, or Firefox/Safari with WebGPU enabled.' };
  }
  try {
    const engine = await createEngine({ backend: 'auto' });
    return { engine, notice: engine.backend === 'cpu' ? 'WebGPU is present but no adapter could be had: normgpu runs on its CPU backend instead.' : null };
  } catch (e) {
    return { engine: await createEngine({ backend: 'cpu' }), notice: `WebGPU failed to start (${e instanceof Error ? e.message : String(e)}): normgpu runs on its CPU backend instead.` };
  }
}

async function start(): Promise<void> {
  installBenchHook();
  const app = document.getElementById('app')!;
  const state: NonNullable<Window['demo']> = { ready: false, backend: '', adapter: '', notice: null, results: {}, hooks: {} };
  window.demo = state;
  const { engine, notice } = await makeEngine();
  const cpu = await createEngine({ backend: 'cpu' });
  const a = engine.adapterInfo;
  const adapter = a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unknown adapter' : 'no GPU';
  Object.assign(state, { backend: engine.backend, adapter, notice });

  const badge = el('span', { class: `badge ${engine.backend}`, 'data-testid': 'backend' }, el('span', { class: 'dot' }),
    engine.backend === 'webgpu' ? `WebGPU · ${adapter}${a?.software ? ' (software adapter)' : ''}` : 'CPU backend (float64 reference)');
  app.append(el('header', { class: 'top' },
    el('h1', { text: 'normgpu' }),
    el('span', { class: 'tagline', text: 'BatchNorm, LayerNorm, InstanceNorm, GroupNorm and RMSNorm as WebGPU compute shaders' }),
    el('span', { class: 'spacer' }),
    badge,
  ));
  if (notice) app.append(el('div', { class: 'notice', role: 'status', 'data-testid': 'notice', text: notice }));

  const tabs = [
    { id: 'playground', label: 'Playground' },
    { id: 'explorer', label: 'Layer explorer' },
    { id: 'benchmark', label: 'Benchmark' },
    { id: 'dataset', label: 'Dataset statistics' },
    { id: 'train', label: 'Train vs eval' },
    { id: 'interop', label: 'Interop' },
  ];
  const nav = el('nav', { class: 'tabs', role: 'tablist' });
  const main = el('main');
  const sections = new Map<string, HTMLElement>();
  for (const t of tabs) {
    const b = el('button', { role: 'tab', 'data-tab': t.id, text: t.label });
    nav.append(b);
    const s = el('section', { class: 'tab', id: `tab-${t.id}` });
    sections.set(t.id, s);
    main.append(s);
    b.addEventListener('click', () => select(t.id));
  }
  app.append(nav, main);
  function select(id: string) {
    nav.querySelectorAll('button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === id)));
    for (const [k, s] of sections) s.hidden = k !== id;
    if (location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
    if (id === 'explorer' && !explorerRan) {
      explorerRan = true;
      void explorer.run();
    }
  }

  const ctx: DemoContext = {
    engine, cpu,
    report: (key, value) => { state.results[key] = value; },
    expose: (key, read) => { state.hooks[key] = read; },
  };
  const playground = mountPlayground(sections.get('playground')!, ctx);
  const explorer = mountExplorer(sections.get('explorer')!, ctx);
  let explorerRan = false;
  mountBenchmark(sections.get('benchmark')!, ctx);
  mountDataset(sections.get('dataset')!, ctx);
  mountTrain(sections.get('train')!, ctx);
  mountInterop(sections.get('interop')!, ctx);
  const initial = location.hash.slice(1);
  select(tabs.some((t) => t.id === initial) ? initial : 'playground');
  await playground.ready;
  state.ready = true;
}

start().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  if (window.demo) window.demo.error = message;
  document.getElementById('app')!.append(el('div', { class: 'notice', text: `The demo failed to start: ${message}` }));
  console.error(e);
});
