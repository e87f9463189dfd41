/**
 * Benchmark tab: runs demo/bench (the same module `npm run bench` drives) in this browser,
 * with a progress bar, the results table and the bar chart.
 */
import { CONTENDER_IDS, runBrowserBenchmark, type ContenderId, type Scope } from '../bench/browser';
import { chartSvg, derive, fmtErr, fmtGbps, fmtMs, fmtX, isPeer, workloadLabel } from '../bench/format';
import type { BenchReport, WorkloadResult } from '../bench/runner';
import type { DemoContext } from './context';
import { el } from './draw';

const LABELS: Record<ContenderId, string> = {
  normgpu: 'normgpu (WebGPU)', 'normgpu-cpu': 'normgpu CPU', tfjs: 'TF.js (webgpu)',
  'ort-jsep': 'ONNX Runtime Web (JSEP)', 'ort-jsep-nchw': 'ORT JSEP, preferredLayout NCHW',
  'ort-webgpu': 'ONNX Runtime Web (native WebGPU EP)', 'ort-webgpu-nchw': 'ORT native, preferredLayout NCHW',
};

/**
 * normgpu's speed-up over the fastest other contender that ran, its own CPU backend included
 * (above 1: normgpu is faster). A CPU time is wall clock, so it is set against normgpu's wall
 * time (call to GPU done), not its GPU timestamps; peers are set against the same kind of time.
 */
function speedUp(report: BenchReport, wr: WorkloadResult): { ratio: number; vs: string } | null {
  const ours = wr.results.normgpu;
  if (ours?.ms == null) return null;
  let best: { ratio: number; vs: string } | null = null;
  for (const c of report.contenders) {
    const r = wr.results[c.id];
    if (c.id === 'normgpu' || r?.ms == null) continue;
    const mine = c.kind === 'cpu' ? ours.wallMs ?? ours.ms : ours.ms;
    const ratio = r.ms / mine;
    if (!best || ratio < best.ratio) best = { ratio, vs: c.id };
  }
  return best;
}

export function mountBenchmark(root: HTMLElement, ctx: DemoContext): void {
  const scopeSel = el('select', { 'data-testid': 'bench-scope' });
  scopeSel.append(
    el('option', { value: 'quick', text: 'Quick: every op and layout, small shapes (~1 min)' }),
    el('option', { value: 'default', text: 'Default: [8,64,56,56], [16,128,56,56], transformer rows (~8 min)' }),
    el('option', { value: 'full', text: 'Full: adds [32,64,112,112], no time budget (long)' }),
  );
  const iterIn = el('input', { type: 'number', min: '1', max: '100', value: '10', 'data-testid': 'bench-iterations' });
  const boxes = CONTENDER_IDS.map((id) => {
    const cb = el('input', { type: 'checkbox', value: id, 'data-testid': `bench-${id}` });
    cb.checked = true;
    return el('label', { class: 'inline' }, cb, LABELS[id]);
  });
  const runBtn = el('button', { class: 'primary', text: 'Run benchmark', 'data-testid': 'bench-run' });
  const bar = el('div');
  const progress = el('div', { class: 'progress' }, bar);
  const status = el('div', { class: 'small muted', 'data-testid': 'bench-status', text: 'Not run yet.' });
  const logBox = el('pre', { class: 'small muted mono', style: 'max-height:140px; overflow:auto; margin:8px 0 0; white-space:pre-wrap' });
  const table = el('div', { class: 'scroll' });
  const chart = el('div', { class: 'chart', 'data-testid': 'bench-chart' });
  const meta = el('div', { class: 'small muted' });
  const download = el('a', { class: 'small', text: 'Download results.json', hidden: '' });

  root.append(
    el('div', { class: 'card' },
      el('h2', { text: 'Benchmark' }),
      el('p', { class: 'intro', text: 'normgpu against TensorFlow.js (WebGPU backend) and ONNX Runtime Web (WebGPU execution provider, CPU fallback disabled) on this browser\'s adapter, with copy-bandwidth ceilings measured before and after. Inputs and outputs stay on the GPU; GPU time comes from timestamp queries where the adapter has them. Contenders run interleaved, and every output is checked against normgpu\'s float64 CPU reference.' }),
      ctx.engine.backend === 'cpu' ? el('p', { class: 'notice', style: 'margin:10px 0 0', text: 'This browser has no WebGPU: only the CPU contender can run; the GPU contenders will be listed as failed.' }) : '',
      el('div', { class: 'controls', style: 'margin-top:12px' }, el('label', {}, 'scope', scopeSel), el('label', {}, 'timed calls per contender', iterIn), runBtn),
      el('div', { class: 'controls', style: 'margin-top:10px' }, ...boxes),
      el('div', { style: 'margin-top:14px' }, progress),
      el('div', { style: 'margin-top:6px' }, status),
      logBox,
    ),
    el('div', { class: 'card' }, el('h3', { text: 'Results' }), meta, el('div', { style: 'margin-top:8px' }, table), download),
    el('div', { class: 'card' }, chart),
  );

  const renderTable = (report: BenchReport) => {
    const cs = report.contenders;
    const peers = cs.filter((c) => isPeer(c.id));
    const t = el('table', { class: 'data', 'data-testid': 'bench-table' });
    const gpu = cs.filter((c) => c.kind === 'gpu');
    const head = ['workload', 'vec4 copy ms', 'normgpu ms', 'GB/s', 'xvec4', 'floor', 'xfloor', '+read ms', ...cs.filter((c) => c.id === 'normgpu-cpu').map(() => 'CPU ms'),
      ...peers.map((p) => `${p.label} ms`), 'speed-up'];
    const acc = el('table', { class: 'data', 'data-testid': 'bench-accuracy' });
    acc.append(el('tr', {}, ...['workload', ...gpu.map((c) => `${c.label} xvec4`), ...gpu.map((c) => `${c.label} max err`)].map((h) => el('th', { text: h }))));
    t.append(el('tr', {}, ...head.map((h) => el('th', { text: h }))));
    for (const wr of report.workloads) {
      const d = derive(report, wr);
      const cellMs = (id: string) => {
        const r = wr.results[id];
        if (!r) return el('td', { text: '–' });
        if (r.held) return el('td', { text: 'held', title: r.held });
        if (r.error) return el('td', { class: 'bad', text: 'fail', title: r.error });
        if (r.ms == null) return el('td', { text: '–', title: r.skipped ?? '' });
        return el('td', {
          text: fmtMs(r.ms) + (r.iterations < wr.workload.iterations ? '*' : ''), title: r.note ?? '',
          'data-id': id, 'data-ms': String(r.ms), 'data-wall-ms': String(r.wallMs ?? r.ms),
        });
      };
      const sp = speedUp(report, wr);
      // Classed on the shown (rounded) figure: 1.00× is neither a win nor a loss.
      const shown = sp && Number(sp.ratio.toFixed(2));
      const vsLabel = sp && (cs.find((c) => c.id === sp.vs)?.label ?? sp.vs);
      t.append(el('tr', {},
        el('td', { text: workloadLabel(wr) }),
        el('td', { text: fmtMs(d.vec4Ms) }),
        cellMs('normgpu'),
        el('td', { text: fmtGbps(d.gbps.normgpu) }),
        el('td', { text: fmtX(d.xvec4.normgpu) }),
        el('td', { text: fmtX(d.floorMs && d.vec4Ms ? d.floorMs / d.vec4Ms : null) }),
        el('td', { text: fmtX(d.xfloor.normgpu), 'data-xfloor': String(d.xfloor.normgpu) }),
        el('td', { text: fmtMs(wr.results.normgpu?.readMs) }),
        ...cs.filter((c) => c.id === 'normgpu-cpu').map((c) => cellMs(c.id)),
        ...peers.map((p) => cellMs(p.id)),
        sp == null ? el('td', { text: '–' }) : el('td', {
          class: shown! > 1 ? 'good' : shown! < 1 ? 'bad' : '', text: `${sp.ratio.toFixed(2)}× vs ${vsLabel}`,
          'data-speedup': String(sp.ratio), 'data-vs': sp.vs,
        }),
      ));
      acc.append(el('tr', {},
        el('td', { text: workloadLabel(wr) }),
        ...gpu.map((c) => el('td', { text: fmtX(d.xvec4[c.id]) })),
        ...gpu.map((c) => el('td', { text: fmtErr(wr.results[c.id]?.maxError) })),
      ));
    }
    table.innerHTML = '';
    table.append(t, el('p', { class: 'small muted', text: 'Median ms per call (hover a cell for what ran; * = fewer timed calls, held = too slow for the default budget). speed-up = the fastest other contender, normgpu\'s own CPU backend included, ÷ normgpu: green above 1 (normgpu is faster), red below. Against the CPU backend both times are wall clock (normgpu: call to GPU done).' }),
      el('h3', { text: 'Time ÷ vec4 copy, and accuracy', style: 'margin-top:14px' }), acc,
      el('p', { class: 'small muted', text: 'xvec4 = time ÷ the vec4 copy kernel on the same bytes (about 1.5 is an ideal two-pass normalization, 1.0 a single-pass one); floor (in the results table) = the time of the memory passes the op cannot avoid on this adapter, as xvec4, and xfloor = normgpu ÷ floor. max err = max |y − normgpu\'s float64 CPU reference|.' }));
    const failed = cs.filter((c) => c.error);
    if (failed.length) table.append(el('p', { class: 'small err', text: failed.map((c) => `${c.label} did not start: ${c.error}`).join(' · ') }));
    meta.textContent = `${report.environment.adapter ?? ''} · ${report.environment.userAgent ?? ''}`;
  };

  runBtn.addEventListener('click', async () => {
    runBtn.disabled = true;
    logBox.textContent = '';
    chart.innerHTML = '';
    download.hidden = true;
    const scope = scopeSel.value as Scope;
    const contenders = boxes.map((b) => b.querySelector('input')!).filter((i) => i.checked).map((i) => i.value as ContenderId);
    const iterations = Math.max(1, Math.floor(Number(iterIn.value) || 10));
    const t0 = performance.now();
    try {
      const report = await runBrowserBenchmark({
        scope,
        contenders,
        iterations: iterations === 10 ? undefined : iterations,
        log: (line) => {
          logBox.textContent += `${line}\n`;
          logBox.scrollTop = logBox.scrollHeight;
        },
        onProgress: (done, total, label) => {
          bar.style.width = `${(100 * done) / total}%`;
          status.textContent = `${done}/${total} · ${label} · ${((performance.now() - t0) / 1000).toFixed(0)} s`;
        },
        onResult: renderTable,
      });
      bar.style.width = '100%';
      renderTable(report);
      chart.innerHTML = chartSvg(report);
      const blob = new Blob([JSON.stringify(report, null, 1)], { type: 'application/json' });
      download.setAttribute('href', URL.createObjectURL(blob));
      download.setAttribute('download', 'results.json');
      download.hidden = false;
      status.textContent = `Done in ${report.seconds} s.`;
      ctx.report('benchmark', { seconds: report.seconds, workloads: report.workloads.length, contenders: report.contenders.map((c) => ({ id: c.id, error: c.error ?? null })) });
    } catch (e) {
      status.innerHTML = '';
      status.append(el('span', { class: 'err', text: `Benchmark failed: ${e instanceof Error ? e.message : String(e)}` }));
    } finally {
      runBtn.disabled = false;
    }
  });
}
