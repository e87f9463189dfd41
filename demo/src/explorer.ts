/**
 * Layer explorer: a random tensor of a chosen shape and layout through one normalization,
 * on the page's engine and on the CPU reference side by side, with the max error, the plan
 * (`engine.explain`) and a diagram of which elements share statistics.
 */
import type { Engine, GroupView, Layout, OpName, Tensor } from '../../src/index';
import { rng } from '../bench/workloads';
import type { DemoContext } from './context';
import { el, fmt } from './draw';

type ExplorerOp = 'bnTrain' | 'bnEval' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';

const OPS: { id: ExplorerOp; label: string; api: OpName; shares: string }[] = [
  { id: 'bnTrain', label: 'BatchNorm (training)', api: 'batchNorm', shares: 'one channel across the whole batch and all positions' },
  { id: 'bnEval', label: 'BatchNorm (inference)', api: 'batchNorm', shares: 'one channel (running statistics, given)' },
  { id: 'layerNorm', label: 'LayerNorm', api: 'layerNorm', shares: 'the normalized trailing dims of one sample' },
  { id: 'rmsNorm', label: 'RMSNorm', api: 'rmsNorm', shares: 'the normalized trailing dims of one sample (root mean square, no centering)' },
  { id: 'instanceNorm', label: 'InstanceNorm', api: 'instanceNorm', shares: 'one channel of one sample' },
  { id: 'groupNorm', label: 'GroupNorm', api: 'groupNorm', shares: 'a group of C/G channels of one sample' },
];

export interface ExplorerReport {
  op: ExplorerOp;
  shape: number[];
  layout: Layout;
  maxError: number;
  view: GroupView;
  groups: number;
  gpuMs: number;
  cpuMs: number;
}

const hue = (g: number) => `hsl(${(g * 137.508) % 360} 58% 62%)`;

export function mountExplorer(root: HTMLElement, ctx: DemoContext): { run: () => Promise<void> } {
  const opSel = el('select', { 'data-testid': 'ex-op' });
  for (const o of OPS) opSel.append(el('option', { value: o.id, text: o.label }));
  const dim = (v: number) => el('input', { type: 'number', min: '1', max: '4096', value: String(v) });
  const [nIn, cIn, hIn, wIn] = [dim(2), dim(8), dim(4), dim(6)];
  const layoutSel = el('select');
  layoutSel.append(el('option', { value: 'channels-first', text: 'NCHW (channels-first)' }), el('option', { value: 'channels-last', text: 'NHWC (channels-last)' }));
  const groupsIn = dim(4);
  const overSel = el('select');
  overSel.append(el('option', { value: 'all', text: 'all but the batch dim' }), el('option', { value: 'last', text: 'the last dim only' }));
  const runBtn = el('button', { class: 'primary', text: 'Run', 'data-testid': 'ex-run' });
  const groupsLabel = el('label', {}, 'groups G', groupsIn);
  const overLabel = el('label', {}, 'normalize over', overSel);
  const results = el('div', { class: 'row' });
  const diagram = el('div', { class: 'diagram' });
  const hoverInfo = el('div', { class: 'small muted', text: 'Hover a cell to highlight every element that shares its statistics.' });
  const shares = el('p', { class: 'intro' });

  root.append(
    el('div', { class: 'card' },
      el('h2', { text: 'Layer explorer' }),
      el('p', { class: 'intro', text: 'A seeded random tensor through one normalization on the GPU and on the float64 CPU reference, side by side. The diagram colours every element by the statistics group it belongs to in normgpu\'s plan.' }),
      el('div', { class: 'controls', style: 'margin-top:12px' },
        el('label', {}, 'operation', opSel),
        el('label', {}, 'N', nIn), el('label', {}, 'C', cIn), el('label', {}, 'H', hIn), el('label', {}, 'W', wIn),
        el('label', {}, 'layout', layoutSel), groupsLabel, overLabel, runBtn,
      ),
    ),
    el('div', { class: 'card' }, results),
    el('div', { class: 'card' }, el('h3', { text: 'Which elements share statistics' }), shares, diagram, hoverInfo),
  );

  const sync = () => {
    const op = opSel.value as ExplorerOp;
    groupsLabel.hidden = op !== 'groupNorm';
    overLabel.hidden = op !== 'layerNorm' && op !== 'rmsNorm';
  };

  async function run(): Promise<void> {
    sync();
    const op = opSel.value as ExplorerOp;
    const info = OPS.find((o) => o.id === op)!;
    const [n, c, h, w] = [nIn, cIn, hIn, wIn].map((i) => Math.max(1, Math.floor(Number(i.value) || 1)));
    const layout = layoutSel.value as Layout;
    const storage = layout === 'channels-first' ? [n, c, h, w] : [n, h, w, c];
    const size = n * c * h * w;
    results.innerHTML = '';
    if (size > 16_000_000) {
      results.append(el('span', { class: 'err', text: 'Keep the tensor under 16M elements here.' }));
      return;
    }
    const r = rng(42);
    const x = new Float32Array(size);
    for (let i = 0; i < size; i++) x[i] = (r() - 0.5) * 4 + Math.sin(i * 0.37) * 2 + 1;
    const channel = Float32Array.from({ length: c }, () => 0.5 + r());
    const normShape = op === 'layerNorm' || op === 'rmsNorm' ? (overSel.value === 'last' ? storage.slice(-1) : storage.slice(1)) : [];
    const normSize = normShape.reduce((a, b) => a * b, 1);
    const elementwise = Float32Array.from({ length: normSize }, () => 0.5 + r());
    const numGroups = Math.max(1, Math.floor(Number(groupsIn.value) || 1));

    const call = (engine: Engine) => {
      const xt = engine.tensor(x, storage, { layout });
      const keep: Tensor[] = [xt];
      const t = (a: Float32Array) => {
        const tt = engine.tensor(a, [a.length]);
        keep.push(tt);
        return tt;
      };
      let options: object;
      let y: Tensor;
      switch (op) {
        case 'bnTrain':
          options = { training: true, weight: t(channel), runningMean: t(new Float32Array(c)), runningVar: t(new Float32Array(c).fill(1)) };
          y = engine.batchNorm(xt, options);
          break;
        case 'bnEval':
          options = { runningMean: t(channel.map((v) => v - 1)), runningVar: t(channel), weight: t(channel) };
          y = engine.batchNorm(xt, options);
          break;
        case 'layerNorm':
          options = { normalizedShape: normShape, weight: t(elementwise) };
          y = engine.layerNorm(xt, options as { normalizedShape: number[] });
          break;
        case 'rmsNorm':
          options = { normalizedShape: normShape, weight: t(elementwise) };
          y = engine.rmsNorm(xt, options as { normalizedShape: number[] });
          break;
        case 'instanceNorm':
          options = { weight: t(channel) };
          y = engine.instanceNorm(xt, options);
          break;
        case 'groupNorm':
          options = { numGroups, weight: t(channel) };
          y = engine.groupNorm(xt, options as { numGroups: number });
          break;
      }
      const plan = engine.explain(info.api, xt, options);
      return { y, plan, release: () => keep.forEach((k) => k.dispose()) };
    };

    let gpu: ReturnType<typeof call>;
    let ref: ReturnType<typeof call>;
    try {
      const t0 = performance.now();
      gpu = call(ctx.engine);
      const yg = await gpu.y.read();
      const gpuMs = performance.now() - t0;
      const t1 = performance.now();
      ref = call(ctx.cpu);
      const yc = await ref.y.read();
      const cpuMs = performance.now() - t1;
      gpu.release();
      ref.release();
      gpu.y.dispose();
      ref.y.dispose();
      let maxError = 0;
      for (let i = 0; i < size; i++) maxError = Math.max(maxError, Math.abs(yg[i] - yc[i]));
      const view = gpu.plan.view;
      const groups = view.o * view.q;

      const first = Math.min(8, size);
      const values = el('table', { class: 'data' },
        el('tr', {}, el('th', { text: 'i' }), el('th', { text: 'x' }), el('th', { text: ctx.engine.backend }), el('th', { text: 'CPU ref' })),
        ...Array.from({ length: first }, (_, i) => el('tr', {}, el('td', { text: String(i) }), el('td', { text: fmt(x[i], 5) }), el('td', { text: fmt(yg[i], 6) }), el('td', { text: fmt(yc[i], 6) }))),
      );
      const ok = maxError <= 1e-4;
      results.append(
        el('div', { class: 'grow' },
          el('h3', { text: `${info.label} on [${storage.join(', ')}] ${layout}` }),
          el('dl', { class: 'kv', style: 'margin-top:10px' },
            el('dt', { text: 'max |GPU − CPU|' }), el('dd', {}, el('span', { class: ok ? 'ok' : 'err', 'data-testid': 'ex-max-error', text: maxError.toExponential(2) }), ` over ${size.toLocaleString('en-US')} values`),
            el('dt', { text: 'time' }), el('dd', { text: `${ctx.engine.backend} ${gpuMs.toFixed(1)} ms · CPU reference ${cpuMs.toFixed(1)} ms (incl. upload and readback)` }),
            el('dt', { text: 'view [O, P, Q, S]' }), el('dd', { class: 'mono', text: `[${view.o}, ${view.p}, ${view.q}, ${view.s}] → ${groups} statistics group${groups === 1 ? '' : 's'} of ${view.p * view.s} elements` }),
            el('dt', { text: 'kernels' }), el('dd', { class: 'mono', text: gpu.plan.kernels.map((k) => `${k.stage}: ${k.variant} [${k.workgroups.join('×')}]`).join(' → ') || '–' }),
            ...(gpu.plan.kernels.find((k) => k.why) ? [el('dt', { text: 'why' }), el('dd', { class: 'small', text: gpu.plan.kernels.filter((k) => k.why).map((k) => k.why).join('; ') })] : []),
          ),
        ),
        el('div', {}, el('h3', { text: 'First outputs' }), values),
      );
      shares.textContent = `${info.label}: each statistic is shared by ${info.shares}.`;
      drawDiagram(view, [n, c, h, w], layout, x);
      ctx.report('explorer', { op, shape: storage, layout, maxError, view, groups, gpuMs, cpuMs } satisfies ExplorerReport);
    } catch (e) {
      results.append(el('span', { class: 'err', text: `Error: ${e instanceof Error ? e.message : String(e)}` }));
    }
  }

  function drawDiagram(view: GroupView, [n, c, h, w]: number[], layout: Layout, x: Float32Array): void {
    const showN = Math.min(n, 4);
    const showC = Math.min(c, 16);
    const showS = Math.min(h * w, 48);
    const cell = 12;
    const blockW = showS * cell;
    const blockH = showC * cell;
    const gapX = 28;
    const top = 34;
    const left = 34;
    const pqs = view.p * view.q * view.s;
    const groupOf = (i: number) => Math.floor(i / pqs) * view.q + (Math.floor(i / view.s) % view.q);
    const index = (ni: number, ci: number, s: number) => {
      const hh = Math.floor(s / w);
      const ww = s % w;
      return layout === 'channels-first' ? ((ni * c + ci) * h + hh) * w + ww : ((ni * h + hh) * w + ww) * c + ci;
    };
    // Group statistics over the whole tensor (not only the cells shown).
    const groups = view.o * view.q;
    const sum = new Float64Array(groups);
    const sq = new Float64Array(groups);
    for (let i = 0; i < x.length; i++) {
      const g = groupOf(i);
      sum[g] += x[i];
      sq[g] += x[i] * x[i];
    }
    const cnt = view.p * view.s;
    const parts: string[] = [];
    const width = left + showN * (blockW + gapX);
    const height = top + blockH + 30;
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11">`);
    for (let ni = 0; ni < showN; ni++) {
      const x0 = left + ni * (blockW + gapX);
      parts.push(`<text x="${x0}" y="${top - 20}" fill="#1f2933" font-weight="600">sample n=${ni}</text>`);
      parts.push(`<text x="${x0}" y="${top - 6}" fill="#616e7c">positions (h, w) →</text>`);
      for (let ci = 0; ci < showC; ci++) {
        for (let s = 0; s < showS; s++) {
          const g = groupOf(index(ni, ci, s));
          parts.push(`<rect class="cell" data-g="${g}" x="${x0 + s * cell}" y="${top + ci * cell}" width="${cell}" height="${cell}" fill="${hue(g)}"/>`);
        }
      }
    }
    for (let ci = 0; ci < showC; ci++) parts.push(`<text x="${left - 6}" y="${top + ci * cell + 9}" text-anchor="end" fill="#616e7c">c${ci}</text>`);
    const more: string[] = [];
    if (n > showN) more.push(`${n - showN} more sample(s)`);
    if (c > showC) more.push(`${c - showC} more channel(s)`);
    if (h * w > showS) more.push(`${h * w - showS} more position(s)`);
    parts.push(`<text x="${left}" y="${height - 8}" fill="#616e7c">rows: channels · columns: spatial positions in row-major (h, w) order${more.length ? ` · not drawn: ${more.join(', ')}` : ''}</text>`);
    parts.push('</svg>');
    diagram.innerHTML = parts.join('');
    const svg = diagram.querySelector('svg')!;
    svg.addEventListener('mouseover', (e) => {
      const g = (e.target as Element).getAttribute?.('data-g');
      if (g === null || g === undefined) return;
      svg.querySelectorAll('rect.cell').forEach((r) => r.classList.toggle('dim', r.getAttribute('data-g') !== g));
      const k = Number(g);
      const mean = sum[k] / cnt;
      const std = Math.sqrt(Math.max(0, sq[k] / cnt - mean * mean));
      hoverInfo.textContent = `group ${k}: ${cnt.toLocaleString('en-US')} elements, mean ${fmt(mean, 4)}, std ${fmt(std, 4)} (of x)`;
    });
    svg.addEventListener('mouseleave', () => {
      svg.querySelectorAll('rect.cell').forEach((r) => r.classList.remove('dim'));
    });
  }

  for (const input of [opSel, nIn, cIn, hIn, wIn, layoutSel, groupsIn, overSel]) input.addEventListener('change', () => void run());
  runBtn.addEventListener('click', () => void run());
  sync();
  return { run };
}
