/**
 * Train vs eval: BatchNorm's two modes made visible. Batches from a drifting distribution go
 * through two `BatchNorm2d` modules on the page's engine, momentum 0.1 and momentum null (the
 * cumulative average); the charts show each batch's statistics and the running mean and
 * variance following them. Then one batch through train mode (its own statistics) and eval
 * mode (each module's running statistics) shows why the two outputs differ. Last, a gradient
 * check: `engine.normBackward` of a chosen op against finite differences of the CPU backend.
 */
import { BatchNorm2d, type Engine, type Layout, type Tensor } from '../../src/index';
import { rng } from '../bench/workloads';
import type { DemoContext } from './context';
import { canvas, el, fmt, histogram } from './draw';
import { driftBatch, DRIFTS, toChannelsLast, trueStats, type Drift } from './drift';

const SHAPE = [16, 2, 8, 8] as const;
const SEED = 1234;
const COLORS = { batch: '#9aa5b1', ema: '#0f9d8a', cum: '#c2410c', truth: '#3b4cc0' };

/** What a drift run reports (read by the e2e test through `window.demo.results.train`). */
export interface TrainReport {
  backend: string;
  drift: Drift;
  steps: number;
  layout: Layout;
  shape: readonly number[];
  seed: number;
  /** Per step, per channel: the batch mean and unbiased variance (what the running update uses). */
  batchMean: number[][];
  batchVar: number[][];
  /** Per step, per channel, after the step: running statistics of the momentum-0.1 and cumulative modules. */
  ema: { mean: number[][]; var: number[][] };
  cumulative: { mean: number[][]; var: number[][] };
  numBatchesTracked: [number, number];
  /** One batch of the last distribution through train mode and both modules' eval mode. */
  modes: { name: string; mean: number[]; std: number[]; maxDiffVsTrain: number }[];
}

/** One row of the gradient-check table. */
export interface GradRow {
  name: string;
  count: number;
  maxAbs: number;
  maxScaled: number;
  /** Max scaled difference of the page engine's analytic gradient vs the CPU backend's (null on the CPU backend). */
  vsCpu: number | null;
  pass: boolean;
}

/** What a gradient check reports (`window.demo.results.gradcheck`). */
export interface GradReport {
  op: string;
  layout: Layout;
  backend: string;
  step: number;
  tolerance: number;
  rows: GradRow[];
}

type NormOp = 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';

interface GradCase {
  id: string;
  label: string;
  op: NormOp;
  /** Options of the op for `shape` (weight and bias added by the check), and the parameters' length. */
  setup(shape: readonly number[], layout: Layout): { options: Record<string, unknown>; params: number; bias: boolean };
}

const channels = (shape: readonly number[], layout: Layout) => (layout === 'channels-last' ? shape[shape.length - 1] : shape[1]);

const GRAD_CASES: readonly GradCase[] = [
  { id: 'bn-train', label: 'BatchNorm, training (batch statistics)', op: 'batchNorm', setup: (s, l) => ({ options: { training: true }, params: channels(s, l), bias: true }) },
  {
    id: 'bn-eval', label: 'BatchNorm, eval (running statistics)', op: 'batchNorm',
    setup: (s, l) => {
      const c = channels(s, l);
      return { options: { training: false, runningMean: Array.from({ length: c }, (_, i) => 0.3 * i - 0.5), runningVar: Array.from({ length: c }, (_, i) => 0.5 + 0.4 * i) }, params: c, bias: true };
    },
  },
  { id: 'layer', label: 'LayerNorm over the last two dims', op: 'layerNorm', setup: (s) => ({ options: { normalizedShape: s.slice(2) }, params: s[2] * s[3], bias: true }) },
  { id: 'rms', label: 'RMSNorm over the last dim', op: 'rmsNorm', setup: (s) => ({ options: { normalizedShape: [s[3]] }, params: s[3], bias: false }) },
  { id: 'instance', label: 'InstanceNorm', op: 'instanceNorm', setup: (s, l) => ({ options: {}, params: channels(s, l), bias: true }) },
  { id: 'group', label: 'GroupNorm, 2 groups', op: 'groupNorm', setup: (s, l) => ({ options: { numGroups: 2 }, params: channels(s, l), bias: true }) },
];

/** Finite-difference step, and the bound on the scaled error of its central differences (truncation ~h², float32 rounding of y ~ε/h). */
const FD_STEP = 3e-3;
const FD_TOLERANCE = 1e-3;

function forward(engine: Engine, op: NormOp, x: Tensor, options: Record<string, unknown>): Tensor {
  switch (op) {
    case 'batchNorm': return engine.batchNorm(x, options);
    case 'layerNorm': return engine.layerNorm(x, options as { normalizedShape: number[] });
    case 'rmsNorm': return engine.rmsNorm(x, options as { normalizedShape: number[] });
    case 'instanceNorm': return engine.instanceNorm(x, options);
    case 'groupNorm': return engine.groupNorm(x, options as { numGroups: number });
  }
}

/** max |a − e| and max |a − e| / (1 + |e|). */
function errors(a: ArrayLike<number>, e: ArrayLike<number>): { maxAbs: number; maxScaled: number } {
  let maxAbs = 0;
  let maxScaled = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    maxAbs = Math.max(maxAbs, d);
    maxScaled = Math.max(maxScaled, d / (1 + Math.abs(e[i])));
  }
  return { maxAbs, maxScaled };
}

/** Per-channel mean and biased std of a [N, C, ...] (or channels-last) array, in float64. */
function channelMoments(v: Float32Array, c: number, layout: Layout, spatial: number) {
  const ch = (i: number) => (layout === 'channels-last' ? i % c : Math.floor(i / spatial) % c);
  const n = v.length / c;
  const mean = new Array<number>(c).fill(0);
  const m2 = new Array<number>(c).fill(0);
  for (let i = 0; i < v.length; i++) mean[ch(i)] += v[i] / n;
  for (let i = 0; i < v.length; i++) m2[ch(i)] += (v[i] - mean[ch(i)]) ** 2;
  return { mean, std: m2.map((s) => Math.sqrt(s / n)) };
}

interface Line {
  values: readonly number[];
  color: string;
  label: string;
  style: 'line' | 'dots' | 'dashed';
}

/** A small line chart over steps 1..n. */
function lineChart(title: string, lines: Line[], width = 420, height = 220): HTMLCanvasElement {
  const c = canvas(width, height);
  const g = c.getContext('2d')!;
  const pad = { l: 40, r: 10, t: 22, b: 22 };
  const all = lines.flatMap((l) => l.values.filter(Number.isFinite));
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const n = Math.max(...lines.map((l) => l.values.length));
  const x = (i: number) => pad.l + (n > 1 ? (i / (n - 1)) * (width - pad.l - pad.r) : 0);
  const y = (v: number) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  g.fillStyle = '#1f2933';
  g.font = '600 12px system-ui, sans-serif';
  g.fillText(title, 4, 13);
  g.strokeStyle = '#dde3ea';
  g.fillStyle = '#616e7c';
  g.font = '10.5px system-ui, sans-serif';
  for (const v of [lo, (lo + hi) / 2, hi]) {
    g.beginPath();
    g.moveTo(pad.l, y(v) + 0.5);
    g.lineTo(width - pad.r, y(v) + 0.5);
    g.stroke();
    g.textAlign = 'right';
    g.fillText(fmt(v, 2), pad.l - 4, y(v) + 3);
  }
  g.textAlign = 'left';
  g.fillText('step 1', pad.l, height - 6);
  g.textAlign = 'right';
  g.fillText(`step ${n}`, width - pad.r, height - 6);
  for (const l of lines) {
    g.strokeStyle = g.fillStyle = l.color;
    if (l.style === 'dots') {
      l.values.forEach((v, i) => g.fillRect(x(i) - 2, y(v) - 2, 4, 4));
      continue;
    }
    g.setLineDash(l.style === 'dashed' ? [4, 3] : []);
    g.lineWidth = l.style === 'dashed' ? 1 : 2;
    g.beginPath();
    l.values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.stroke();
  }
  g.setLineDash([]);
  return c;
}

function legend(lines: Line[]): HTMLElement {
  return el('div', { class: 'legend', style: 'margin-top:4px' },
    ...lines.map((l) => el('span', {}, el('span', { class: 'swatch', style: `background:${l.color}${l.style === 'dashed' ? ';opacity:0.6' : ''}` }), l.label)));
}

/**
 * Mount the Train vs eval tab in `root`. It runs once when first shown; each run reports a
 * TrainReport as `ctx.report('train', ...)`, each gradient check a GradReport as 'gradcheck'.
 */
export function mountTrain(root: HTMLElement, ctx: DemoContext): void {
  const e = ctx.engine;
  const driftSel = el('select', { 'data-testid': 'tr-drift' });
  for (const d of DRIFTS) driftSel.append(el('option', { value: d.id, text: d.label }));
  const stepsIn = el('input', { type: 'number', min: '2', max: '200', value: '30', 'data-testid': 'tr-steps' });
  const layoutSel = el('select', { 'data-testid': 'tr-layout' });
  layoutSel.append(el('option', { value: 'channels-first', text: 'NCHW (channels-first)' }), el('option', { value: 'channels-last', text: 'NHWC (channels-last)' }));
  const runBtn = el('button', { class: 'primary', text: 'Run', 'data-testid': 'tr-run' });
  const status = el('div', { class: 'small muted', 'data-testid': 'tr-status', text: 'Not run yet.' });
  const charts = el('div', { class: 'figures', 'data-testid': 'tr-charts' });
  const modes = el('div', { class: 'scroll' });
  const hists = el('div', { class: 'figures' });

  const opSel = el('select', { 'data-testid': 'gc-op' });
  for (const g of GRAD_CASES) opSel.append(el('option', { value: g.id, text: g.label }));
  const gcLayoutSel = el('select', { 'data-testid': 'gc-layout' });
  gcLayoutSel.append(el('option', { value: 'channels-first', text: 'channels-first' }), el('option', { value: 'channels-last', text: 'channels-last' }));
  const checkBtn = el('button', { class: 'primary', text: 'Check gradients', 'data-testid': 'gc-run' });
  const gcStatus = el('div', { class: 'small muted', 'data-testid': 'gc-status' });
  const gcTable = el('div', { class: 'scroll' });

  root.append(
    el('div', { class: 'card' },
      el('h2', { text: 'Train vs eval' }),
      el('p', { class: 'intro', text: `In training, BatchNorm normalizes each batch by that batch's own mean and variance, and keeps running averages of them for test time; in eval mode it normalizes by those running averages. Here ${SHAPE[0]} × ${SHAPE[1]} × ${SHAPE[2]} × ${SHAPE[3]} batches from a drifting distribution go through two BatchNorm2d modules ${e.backend === 'webgpu' ? 'on the GPU' : 'on the CPU backend'}: momentum 0.1 (an exponential moving average that follows the drift) and momentum null (PyTorch's cumulative average over all batches, which lags behind it).` }),
      el('div', { class: 'controls', style: 'margin-top:12px' },
        el('label', {}, 'distribution', driftSel),
        el('label', {}, 'batches', stepsIn),
        el('label', {}, 'layout', layoutSel),
        runBtn,
      ),
      el('div', { style: 'margin-top:8px' }, status),
      el('div', { style: 'margin-top:10px' }, charts),
    ),
    el('div', { class: 'card' },
      el('h3', { text: 'The same batch in train mode and in eval mode' }),
      el('p', { class: 'intro small', text: 'A fresh batch of the last distribution. Train mode normalizes it by its own statistics (mean 0, std 1 per channel, whatever the running averages); eval mode uses each module\'s running statistics, so its output is only as centred as they are current.' }),
      el('div', { style: 'margin-top:8px' }, modes),
      el('div', { style: 'margin-top:10px' }, hists),
    ),
    el('div', { class: 'card' },
      el('h3', { text: 'Gradient check' }),
      el('p', { class: 'intro small', text: `engine.normBackward of the chosen op on ${e.backend === 'webgpu' ? 'the GPU' : 'the CPU backend'}, for the loss L = Σ y · r with a random r (so dy = r), against central finite differences (step ${FD_STEP}) of L computed with the CPU backend's forward, for every element of x, weight and bias of a [2, 4, 3, 3] tensor.` }),
      el('div', { class: 'controls', style: 'margin-top:10px' }, el('label', {}, 'op', opSel), el('label', {}, 'layout', gcLayoutSel), checkBtn),
      el('div', { style: 'margin-top:8px' }, gcStatus),
      el('div', { style: 'margin-top:8px' }, gcTable),
    ),
  );

  let busy = false;
  const guard = (fn: () => Promise<void>, out: HTMLElement) => async () => {
    if (busy) return;
    busy = true;
    runBtn.disabled = checkBtn.disabled = true;
    try {
      await fn();
    } catch (err) {
      out.innerHTML = '';
      out.append(el('span', { class: 'err', text: `Error: ${err instanceof Error ? err.message : String(err)}` }));
      console.error(err);
    } finally {
      busy = false;
      runBtn.disabled = checkBtn.disabled = false;
    }
  };

  async function runDrift(): Promise<void> {
    const drift = driftSel.value as Drift;
    const steps = Math.max(2, Math.min(200, Math.round(Number(stepsIn.value)) || 30));
    const layout = layoutSel.value as Layout;
    const [n, c] = SHAPE;
    const shape = layout === 'channels-last' ? [n, SHAPE[2], SHAPE[3], c] : [...SHAPE];
    const statsAxes = layout === 'channels-last' ? [0, 1, 2] : [0, 2, 3];
    const spatial = SHAPE[2] * SHAPE[3];
    const upload = (data: Float32Array) => e.tensor(layout === 'channels-last' ? toChannelsLast(data, n, c) : data, shape, { layout });
    const ema = new BatchNorm2d(e, c, { momentum: 0.1 });
    const cum = new BatchNorm2d(e, c, { momentum: null });
    const report: TrainReport = {
      backend: e.backend, drift, steps, layout, shape, seed: SEED, batchMean: [], batchVar: [],
      ema: { mean: [], var: [] }, cumulative: { mean: [], var: [] }, numBatchesTracked: [0, 0], modes: [],
    };
    try {
      for (let t = 0; t < steps; t++) {
        status.textContent = `Batch ${t + 1} / ${steps}…`;
        const x = upload(driftBatch(drift, t, steps, SHAPE, SEED));
        const outs = [ema.forward(x), cum.forward(x)];
        const m = e.moments(x, { axes: statsAxes, correction: 1 });
        const values = await Promise.all([m.mean, m.variance, ema.runningMean!, ema.runningVar!, cum.runningMean!, cum.runningVar!].map((v) => v.read()));
        const [bm, bv, em, ev, cm, cv] = values.map((v) => Array.from(v));
        report.batchMean.push(bm);
        report.batchVar.push(bv);
        report.ema.mean.push(em);
        report.ema.var.push(ev);
        report.cumulative.mean.push(cm);
        report.cumulative.var.push(cv);
        for (const t2 of [x, ...outs, m.mean, m.variance]) t2.dispose();
      }
      report.numBatchesTracked = [ema.numBatchesTracked, cum.numBatchesTracked];
      drawCharts(report, drift);

      // Train mode on a copy of the state (so the modules themselves keep theirs), eval on both modules.
      const data = driftBatch(drift, steps - 1, steps, SHAPE, SEED + 100_000);
      const x = upload(data);
      const probe = new BatchNorm2d(e, c);
      try {
        probe.loadStateDict(await ema.stateDict());
        const results = [probe.forward(x), ema.eval().forward(x), cum.eval().forward(x)];
        const [yTrain, yEma, yCum] = await Promise.all(results.map((r) => r.read()));
        for (const r of results) r.dispose();
        const row = (name: string, y: Float32Array) => ({ name, ...channelMoments(y, c, layout, spatial), maxDiffVsTrain: errors(y, yTrain).maxAbs });
        report.modes = [row('train mode (batch statistics)', yTrain), row('eval, momentum 0.1', yEma), row('eval, momentum null (cumulative)', yCum)];
        drawModes(report, [yTrain, yEma, yCum], layout, spatial);
      } finally {
        probe.dispose();
        x.dispose();
      }
      status.textContent = `Done: ${steps} batches, ${drift === 'none' ? 'no drift' : DRIFTS.find((d) => d.id === drift)!.label}, ${layout}. num_batches_tracked = ${report.numBatchesTracked[0]} for both modules.`;
      ctx.report('train', report);
    } finally {
      ema.dispose();
      cum.dispose();
    }
  }

  function drawCharts(r: TrainReport, drift: Drift): void {
    charts.innerHTML = '';
    const ch = 0;
    const col = (rows: number[][]) => rows.map((v) => v[ch]);
    const truth = (k: 'mean' | 'var') => Array.from({ length: r.steps }, (_, t) => {
      const s = trueStats(drift, ch, t, r.steps);
      return k === 'mean' ? s.mean : s.std ** 2;
    });
    for (const [name, key, run] of [['momentum 0.1', 'ema', r.ema], ['momentum null (cumulative)', 'cum', r.cumulative]] as const) {
      for (const k of ['mean', 'var'] as const) {
        const lines: Line[] = [
          { values: col(k === 'mean' ? r.batchMean : r.batchVar), color: COLORS.batch, label: `batch ${k === 'mean' ? 'mean' : 'variance'}`, style: 'dots' },
          { values: truth(k), color: COLORS.truth, label: 'true value', style: 'dashed' },
          { values: col(run[k]), color: COLORS[key], label: `running_${k}`, style: 'line' },
        ];
        const fig = el('figure', { 'data-testid': `tr-chart-${key}-${k}` }, lineChart(`${name}: channel ${ch} ${k === 'mean' ? 'mean' : 'variance'}`, lines), legend(lines));
        charts.append(fig);
      }
    }
  }

  function drawModes(r: TrainReport, ys: Float32Array[], layout: Layout, spatial: number): void {
    const c = SHAPE[1];
    const table = el('table', { class: 'data', 'data-testid': 'tr-modes' });
    table.append(el('tr', {}, ...['mode', ...Array.from({ length: c }, (_, i) => `channel ${i} mean / std`), 'max |y − y_train|'].map((h) => el('th', { text: h }))));
    for (const m of r.modes) {
      table.append(el('tr', {}, el('td', { text: m.name }),
        ...m.mean.map((v, i) => el('td', { text: `${fmt(v, 3)} / ${fmt(m.std[i], 3)}` })),
        el('td', { text: fmt(m.maxDiffVsTrain, 3), 'data-value': String(m.maxDiffVsTrain) })));
    }
    modes.innerHTML = '';
    modes.append(table);
    // Channel 0 of each output as a histogram on one axis.
    const pick = (y: Float32Array) => y.filter((_, i) => (layout === 'channels-last' ? i % c : Math.floor(i / spatial) % c) === 0);
    const colors = [COLORS.batch, COLORS.ema, COLORS.cum];
    const series = ys.map((y, k) => {
      const v = pick(y);
      return { values: v, offset: 0, stride: 1, count: v.length, color: colors[k], label: r.modes[k].name };
    });
    const all = series.flatMap((s) => Array.from(s.values));
    const lo = Math.min(-3, ...all);
    const hi = Math.max(3, ...all);
    hists.innerHTML = '';
    hists.append(el('figure', {}, histogram(series, lo, hi, 'channel 0 of the output', 520, 160),
      legend(series.map((s) => ({ values: [], color: s.color, label: s.label, style: 'line' as const })))));
  }

  async function runGradCheck(): Promise<void> {
    const gc = GRAD_CASES.find((g) => g.id === opSel.value)!;
    const layout = gcLayoutSel.value as Layout;
    const shape = layout === 'channels-last' ? [2, 3, 3, 4] : [2, 4, 3, 3];
    const { options, params, bias: hasBias } = gc.setup(shape, layout);
    const random = rng(77);
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const size = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: size }, () => 1.5 * normal() + 0.5);
    const r = Float32Array.from({ length: size }, normal);
    const weight = Float32Array.from({ length: params }, () => 0.5 + random());
    const bias = hasBias ? Float32Array.from({ length: params }, normal) : undefined;
    gcStatus.textContent = `Checking ${gc.label} (${layout})…`;

    // Analytic gradients on the page's engine, and on the CPU backend to compare them with.
    const analytic = async (engine: Engine) => {
      const xt = engine.tensor(x, shape, { layout });
      const dy = engine.tensor(r, shape, { layout });
      const g = engine.normBackward(gc.op, dy, xt, { ...options, weight, bias } as Parameters<Engine['normBackward']>[3]);
      const out = { dx: await g.dx!.read(), dweight: await g.dweight!.read(), dbias: g.dbias ? await g.dbias.read() : undefined };
      for (const t of [xt, dy, g.dx, g.dweight, g.dbias]) t?.dispose();
      return out;
    };
    const page = await analytic(e);
    const ref = e.backend === 'cpu' ? null : await analytic(ctx.cpu);

    // L(x, weight, bias) = Σ y · r on the CPU backend, accumulated in float64.
    const loss = async (xv: Float32Array, wv: Float32Array, bv?: Float32Array) => {
      const xt = ctx.cpu.tensor(xv, shape, { layout });
      const y = forward(ctx.cpu, gc.op, xt, { ...options, weight: wv, bias: bv });
      const yv = await y.read();
      xt.dispose();
      y.dispose();
      let s = 0;
      for (let i = 0; i < yv.length; i++) s += yv[i] * r[i];
      return s;
    };
    const numeric = async (which: 'x' | 'w' | 'b') => {
      const base = which === 'x' ? x : which === 'w' ? weight : bias!;
      const out = new Float64Array(base.length);
      for (let i = 0; i < base.length; i++) {
        const at = (d: number) => {
          const v = base.slice();
          v[i] += d;
          return loss(which === 'x' ? v : x, which === 'w' ? v : weight, which === 'b' ? v : bias);
        };
        // The perturbed value as float32 actually holds it: the difference quotient uses that step.
        const h = Math.fround(base[i] + FD_STEP) - base[i];
        const hm = base[i] - Math.fround(base[i] - FD_STEP);
        out[i] = ((await at(FD_STEP)) - (await at(-FD_STEP))) / (h + hm);
      }
      return out;
    };
    const rows: GradRow[] = [];
    const add = async (name: string, which: 'x' | 'w' | 'b', got: Float32Array, cpuGot?: Float32Array) => {
      const fd = await numeric(which);
      const err = errors(got, fd);
      const vsCpu = cpuGot ? errors(got, cpuGot).maxScaled : null;
      rows.push({ name, count: got.length, ...err, vsCpu, pass: err.maxScaled <= FD_TOLERANCE && (vsCpu === null || vsCpu <= 1e-5) });
    };
    await add('dx', 'x', page.dx, ref?.dx);
    await add('dweight', 'w', page.dweight, ref?.dweight);
    if (page.dbias) await add('dbias', 'b', page.dbias, ref?.dbias);

    const table = el('table', { class: 'data', 'data-testid': 'gc-table' });
    table.append(el('tr', {}, ...['gradient', 'elements', 'max |analytic − FD|', 'max scaled error', ...(ref ? ['vs CPU analytic (scaled)'] : []), 'verdict'].map((h) => el('th', { text: h }))));
    for (const row of rows) {
      table.append(el('tr', { 'data-grad': row.name },
        el('td', { text: row.name }), el('td', { text: String(row.count) }),
        el('td', { text: row.maxAbs.toExponential(2) }), el('td', { text: row.maxScaled.toExponential(2), 'data-value': String(row.maxScaled) }),
        ...(ref ? [el('td', { text: row.vsCpu!.toExponential(2) })] : []),
        el('td', { class: row.pass ? 'ok' : 'err', text: row.pass ? 'pass' : 'FAIL' })));
    }
    gcTable.innerHTML = '';
    gcTable.append(table);
    gcStatus.textContent = `${gc.label}, ${layout}: finite differences within ${FD_TOLERANCE} (scaled)${ref ? ', and the GPU gradients within 1e-5 of the CPU backend\'s' : ''} ${rows.every((row) => row.pass) ? '— all pass' : '— some FAIL'}.`;
    ctx.report('gradcheck', { op: gc.id, layout, backend: e.backend, step: FD_STEP, tolerance: FD_TOLERANCE, rows } satisfies GradReport);
  }

  runBtn.addEventListener('click', guard(runDrift, status));
  checkBtn.addEventListener('click', guard(runGradCheck, gcStatus));
  // Run once, the first time the tab is shown.
  const first = () => {
    if (root.hidden) return;
    shown.disconnect();
    void guard(runDrift, status)();
  };
  const shown = new MutationObserver(first);
  shown.observe(root, { attributes: true, attributeFilter: ['hidden'] });
  queueMicrotask(first);
}
