/**
 * Derived figures (GB/s, xvec4, access floor, speed-up) and the tables and chart made from a BenchReport.
 * Pure functions on plain data: the Benchmark tab, `npm run bench` and `npm run bench:node`
 * all print the same tables.
 */
import type { BenchReport, ContenderResult, WorkloadResult } from './runner';
import { floorPartMs, oneShapeMs, type CeilingResult, type FloorPart } from './ceilings';
import { OP_LABEL, accessFloor, describeShape, type AccessFloor, type Workload } from './workloads';

export interface Derived {
  /** Mean of the vec4-copy medians at the start and the end for this size. */
  vec4Ms: number | null;
  copyMs: number | null;
  gbps: Record<string, number | null>;
  xvec4: Record<string, number | null>;
  /**
   * The workload's access floor in ms on this adapter (accessFloor: the sum of its parts, each
   * the mean of the start and end ceilings of the faster of its two shapes, floorPartMs); null
   * when the report's ceilings have no floor parts.
   */
  floorMs: number | null;
  /** Time ÷ floorMs: 1 is as fast as the op's unavoidable accesses allow. */
  xfloor: Record<string, number | null>;
  /** Fastest of all peers (not normgpu) by median ms, and normgpu's speed-up over it (>1: normgpu faster). */
  fastestPeer: string | null;
  speedup: number | null;
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

export function isPeer(id: string): boolean {
  return !id.startsWith('normgpu');
}

export function derive(report: BenchReport, wr: WorkloadResult): Derived {
  const w = wr.workload;
  const at = [...report.ceilings.start, ...report.ceilings.end].filter((c) => c.numel === w.numel);
  const vec4Ms = mean(at.map((c) => c.vec4Ms));
  const copyMs = mean(at.map((c) => c.copyMs));
  const part = (p: FloorPart) => mean(at.flatMap((c) => floorPartMs(c, p) ?? []));
  const floor = accessFloor(w);
  const apply = part(floor.apply);
  const read = floor.read ? part('read') : 0;
  const floorMs = apply != null && read != null ? read + apply : null;
  const gbps: Record<string, number | null> = {};
  const xvec4: Record<string, number | null> = {};
  const xfloor: Record<string, number | null> = {};
  for (const [id, r] of Object.entries(wr.results)) {
    gbps[id] = r.ms ? w.bytes / (r.ms / 1000) / 1e9 : null;
    xvec4[id] = r.ms && vec4Ms ? r.ms / vec4Ms : null;
    xfloor[id] = r.ms && floorMs ? r.ms / floorMs : null;
  }
  let fastestPeer: string | null = null;
  for (const [id, r] of Object.entries(wr.results)) {
    if (!isPeer(id) || r.ms == null) continue;
    if (fastestPeer === null || r.ms < wr.results[fastestPeer].ms!) fastestPeer = id;
  }
  const ours = wr.results.normgpu?.ms;
  const speedup = fastestPeer && ours ? wr.results[fastestPeer].ms! / ours : null;
  return { vec4Ms, copyMs, gbps, xvec4, floorMs, xfloor, fastestPeer, speedup };
}

/** An access floor as its parts, e.g. `read + affine`. */
function floorLabel(f: AccessFloor): string {
  return f.read ? `read + ${f.apply}` : f.apply;
}

/** `copy for BatchNorm eval; read + copy for BatchNorm train, InstanceNorm; ...` over the given workloads. */
function floorRules(workloads: readonly Workload[]): string {
  const ops = new Map<string, Set<string>>();
  for (const w of workloads) {
    const label = floorLabel(accessFloor(w));
    if (!ops.has(label)) ops.set(label, new Set());
    ops.get(label)!.add(`${OP_LABEL[w.op]}${w.layout === 'rows' ? ' rows' : ''}`);
  }
  return [...ops].map(([label, names]) => `${label} for ${[...names].join(', ')}`).join('; ');
}

/**
 * Per size: the copy ceilings and the access-floor parts at the start → the end of the run,
 * each part also as its floor time's mean ÷ the vec4 copy's. Parts measured in both shapes
 * show both, one vec4 | the loop per invocation, with * on the faster (the floor's); older
 * reports have the one-vec4 shape only.
 */
export function ceilingLines(report: BenchReport): string[] {
  const ms = (a: number | undefined, b: number | undefined) => `${fmtMs(a)} → ${fmtMs(b)} ms`;
  return report.ceilings.start.flatMap((a) => {
    const b = report.ceilings.end.find((e) => e.numel === a.numel);
    if (!b) return [];
    const vec4 = (a.vec4Ms + b.vec4Ms) / 2;
    const x = (k: FloorPart) => ` (${fmtX((floorPartMs(a, k)! + floorPartMs(b, k)!) / 2 / vec4)}×)`;
    const head = `${a.numel.toLocaleString('en-US')} floats: vec4 copy`;
    const b2b = `copyBufferToBuffer ${ms(a.copyMs, b.copyMs)}`;
    const P = a.paramLength?.toLocaleString('en-US');
    if (a.loopMs && b.loopMs) {
      // A time, starred when its shape is the faster one at that end of the run.
      const t = (c: CeilingResult, k: FloorPart, shape: 'one' | 'loop') =>
        `${fmtMs(shape === 'one' ? oneShapeMs(c, k) : c.loopMs![k])}${c.fastest?.[k] === shape ? '*' : ''}`;
      const both = (k: FloorPart) => `${t(a, k, 'one')} → ${t(b, k, 'one')} | ${t(a, k, 'loop')} → ${t(b, k, 'loop')} ms`;
      const parts = (['read', 'scale', 'affine'] as const).map((k) => `${k} ${both(k)}${x(k)}`);
      return [`${head} ${t(a, 'copy', 'one')} → ${t(b, 'copy', 'one')} ms (${a.loopVec4s} vec4/invocation: ${t(a, 'copy', 'loop')} → ${t(b, 'copy', 'loop')} ms), ${b2b}; `
        + `floor parts (P = ${P}; ms with one | ${a.loopVec4s} vec4 per invocation, * = the faster shape, which the floor takes; in brackets its mean ÷ the vec4 copy): `
        + `copy${x('copy')}, ${parts.join(', ')}`];
    }
    const line = `${head} ${ms(a.vec4Ms, b.vec4Ms)}, ${b2b}`;
    const parts = (['read', 'scale', 'affine'] as const).flatMap((k) => {
      const [pa, pb] = [a[`${k}Ms`], b[`${k}Ms`]];
      return pa == null || pb == null ? [] : [`${k} ${ms(pa, pb)}${x(k)}`];
    });
    return [parts.length ? `${line}; floor parts (P = ${P}): ${parts.join(', ')}` : line];
  });
}

export const fmtMs = (v: number | null | undefined) => (v == null ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
export const fmtX = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(2));
export const fmtErr = (v: number | null | undefined) => (v == null ? '–' : v === 0 ? '0' : v.toExponential(1));
export const fmtGbps = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(1));

function cell(r: ContenderResult | undefined, wr: WorkloadResult): string {
  if (!r) return '–';
  if (r.held) return 'held²';
  if (r.skipped) return '–³';
  if (r.ms == null) return r.error ? 'fail¹' : '–';
  return r.iterations < wr.workload.iterations ? `${fmtMs(r.ms)}*` : fmtMs(r.ms);
}

export function workloadLabel(wr: WorkloadResult): string {
  return `${OP_LABEL[wr.workload.op]} ${describeShape(wr.workload)}`;
}

/** Markdown tables: timings and the ceilings, then accuracy and what each contender ran, then failures, then the small-op chains. */
export function markdownTables(report: BenchReport): string {
  if (!report.workloads.length) return chainTable(report);
  const cs = report.contenders;
  const peers = cs.filter((c) => isPeer(c.id));
  const cpu = cs.find((c) => c.id === 'normgpu-cpu');
  const lines: string[] = [];
  const head = ['workload', 'vec4 copy', 'copyB2B', 'normgpu', 'GB/s', 'xvec4', 'floor', 'xfloor', '+read', ...(cpu ? ['CPU ref'] : []), ...peers.map((p) => p.label), ...(peers.length ? ['speed-up'] : [])];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  for (const wr of report.workloads) {
    const d = derive(report, wr);
    const n = wr.results.normgpu;
    const speed = d.speedup == null ? '–' : `${d.speedup.toFixed(2)}× vs ${cs.find((c) => c.id === d.fastestPeer)?.label}`;
    lines.push(`| ${[
      workloadLabel(wr), fmtMs(d.vec4Ms), fmtMs(d.copyMs), cell(n, wr), fmtGbps(d.gbps.normgpu), fmtX(d.xvec4.normgpu),
      fmtX(d.floorMs && d.vec4Ms ? d.floorMs / d.vec4Ms : null), fmtX(d.xfloor.normgpu), fmtMs(n?.readMs),
      ...(cpu ? [cell(wr.results['normgpu-cpu'], wr)] : []), ...peers.map((p) => cell(wr.results[p.id], wr)), ...(peers.length ? [speed] : []),
    ].join(' | ')} |`);
  }
  const rules = floorRules(report.workloads.map((wr) => wr.workload));
  const loop = [...report.ceilings.start, ...report.ceilings.end].find((c) => c.loopVec4s)?.loopVec4s;
  // Reports from before the looped shape timed each pass with one vec4 per invocation only.
  const shapes = loop
    ? `each pass's time in the faster of two kernel shapes on this adapter, one vec4 per invocation (GPU-shaped) or a loop of ${loop} consecutive vec4s per invocation (the shape CPU-backed adapters reward)`
    : 'each pass\'s time as a kernel with one vec4 per invocation';
  lines.push('', 'Median ms per call (10 timed calls, 5 at the largest shape; * = 3, the configuration was too slow for the default run\'s budget); '
    + 'normgpu GB/s counts one read of the input and one write of the output; xvec4 = time ÷ the vec4 copy kernel (one vec4 per invocation) on the same bytes; '
    + `floor = what the memory accesses the op cannot avoid cost on this adapter, given as xvec4 so that it reads against that column: the sum over its access passes (${rules}) of ${shapes}, `
    + 'where read = a read-only vec4 pass over x (a statistics pass), copy = a vec4 copy, scale = x · w[i mod P] and affine = x · w[i mod P] + b[i mod P] as vec4, '
    + 'P = one sample\'s [C,H,W] (a row for row ops), all measured in this run; xfloor = normgpu ÷ floor (1: normgpu is as fast as its accesses allow); '
    + '+read adds copying the output to the host (wall clock); speed-up = the fastest of all peer columns ÷ normgpu (below 1: normgpu is slower).', '');
  const ceilings = ceilingLines(report);
  if (ceilings.length) lines.push('Ceilings and floor parts at the start → the end of the run (the tables use their mean):', '', ...ceilings.map((c) => `- ${c}`), '');

  const gpu = cs.filter((c) => c.kind === 'gpu');
  const head2 = ['workload', ...gpu.map((c) => `${c.label} xvec4`), ...gpu.map((c) => `${c.label} max err`)];
  lines.push(`| ${head2.join(' | ')} |`, `|${head2.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  for (const wr of report.workloads) {
    const d = derive(report, wr);
    lines.push(`| ${[workloadLabel(wr), ...gpu.map((c) => fmtX(d.xvec4[c.id])), ...gpu.map((c) => fmtErr(wr.results[c.id]?.maxError))].join(' | ')} |`);
  }
  lines.push('', 'max err = max |y − reference| over the output, reference = normgpu\'s float64 CPU backend.', '');

  const notes = new Map<string, Set<string>>();
  const failures: string[] = [];
  const held: string[] = [];
  // Contender label and reason -> the op labels not run.
  const skipped = new Map<string, Set<string>>();
  for (const wr of report.workloads) {
    for (const c of cs) {
      const r = wr.results[c.id];
      if (!r) continue;
      if (r.note && isPeer(c.id)) {
        const key = `${c.label}, ${OP_LABEL[wr.workload.op]}${wr.workload.layout === 'NHWC' ? ' NHWC' : ''}`;
        if (!notes.has(key)) notes.set(key, new Set());
        notes.get(key)!.add(r.note);
      }
      if (r.error) failures.push(`${workloadLabel(wr)} — ${c.label}: ${r.error}`);
      if (r.held) held.push(`${workloadLabel(wr)} — ${c.label}: ${r.held}`);
      if (r.skipped) {
        const key = `${c.label}: ${r.skipped}`;
        if (!skipped.has(key)) skipped.set(key, new Set());
        skipped.get(key)!.add(OP_LABEL[wr.workload.op]);
      }
    }
  }
  if (notes.size) {
    lines.push('What each peer ran:', '');
    for (const [k, v] of notes) lines.push(`- ${k}: ${[...v].join('; ')}`);
    lines.push('');
  }
  for (const c of cs) if (c.error) failures.unshift(`${c.label} did not start: ${c.error}`);
  if (failures.length) {
    lines.push('¹ Failures and skips:', '');
    for (const f of failures) lines.push(`- ${f}`);
    lines.push('');
  }
  if (held.length) {
    lines.push('² Held for `npm run bench -- --full` (too slow for the default run on this adapter; output still checked):', '');
    for (const h of held) lines.push(`- ${h}`);
    lines.push('');
  }
  if (skipped.size) {
    lines.push('³ Not run (another column covers it):', '');
    for (const [k, ops] of skipped) lines.push(`- ${k} (${[...ops].join(', ')})`);
    lines.push('');
  }
  const chains = chainTable(report);
  if (chains) lines.push(chains);
  return lines.join('\n');
}

/** The small-op chains: time per op batched vs one submit per op, or '' when none ran. */
export function chainTable(report: BenchReport): string {
  const chains = report.chains ?? [];
  if (!chains.length) return '';
  const lines = ['Small-op chains (normgpu): each op on the previous output, timed from the first call until the GPU is done.', ''];
  const head = ['chain', 'ops', 'batched ms/op', 'submits', 'one submit per op, ms/op', 'submits', 'ratio', 'GPU ms/op batched', 'GPU ms/op per-op', 'max err', 'kernels per op'];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  for (const c of chains) {
    const label = `${OP_LABEL[c.workload.op]} ${describeShape(c.workload)}`;
    if (c.error || !c.batched || !c.perOp) {
      lines.push(`| ${label} | ${c.length} | fail: ${c.error ?? '?'} |${' – |'.repeat(head.length - 3)}`);
      continue;
    }
    const gpu = (m: NonNullable<typeof c.batched>) => (m.gpuMs == null ? '–' : fmtMs(m.gpuMs / c.length));
    lines.push(`| ${[label, c.length, fmtMs(c.batched.msPerOp), c.batched.submits, fmtMs(c.perOp.msPerOp), c.perOp.submits,
      `${fmtX(c.ratio)}×`, gpu(c.batched), gpu(c.perOp), fmtErr(c.maxError), c.note ?? '–'].join(' | ')} |`);
  }
  lines.push('', `Median of ${chains.map((c) => `${c.iterations}`).join(' / ')} chains per mode, modes interleaved. ms/op = wall time of the chain ÷ ops; ratio = one submit per op ÷ batched (above 1: batching saves time); GPU ms/op = timestamps around the chain, gaps between submits included; submits are counted. max err = the chain's final output against the float64 CPU backend running the same chain.`, '');
  return lines.join('\n');
}

const COLORS: Record<string, string> = {
  normgpu: '#0f9d8a', tfjs: '#f08a24', 'ort-jsep': '#3b6fd8', 'ort-jsep-nchw': '#8fb3f5', 'ort-webgpu': '#7b3fb8', 'ort-webgpu-nchw': '#c3a3e8', 'normgpu-cpu': '#9aa0a6',
};
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal grouped bar chart of xvec4 (time ÷ vec4 copy, log scale, lower is better) per
 * workload and GPU contender, as a standalone SVG string.
 */
export function chartSvg(report: BenchReport, title = 'Time ÷ vec4 copy of the same bytes (log scale, lower is better)'): string {
  const gpu = report.contenders.filter((c) => c.kind === 'gpu' && !c.error);
  const rows = report.workloads.map((wr) => ({ label: workloadLabel(wr), d: derive(report, wr) }));
  const values = rows.flatMap((r) => gpu.map((c) => r.d.xvec4[c.id])).filter((v): v is number => v != null && v > 0);
  const lo = Math.min(0.5, ...values);
  const hi = Math.max(2, ...values);
  const decades = { lo: Math.floor(Math.log10(lo)), hi: Math.ceil(Math.log10(hi)) };
  const bar = 9;
  const gap = 10;
  const labelW = 290;
  const plotW = 640;
  const top = 80;
  const groupH = gpu.length * bar + gap;
  const height = top + rows.length * groupH + 40;
  const width = labelW + plotW + 30;
  const x = (v: number) => labelW + ((Math.log10(v) - decades.lo) / (decades.hi - decades.lo)) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="20" font-size="14" font-weight="600" fill="#1f2933">${esc(title)}</text>`);
  const env = report.environment;
  const where = [env.adapter && `adapter: ${env.adapter}`, env.browser && `browser: ${env.browser}`, env.machine, report.startedAt.slice(0, 10)].filter(Boolean).join(' · ');
  out.push(`<text x="12" y="37" font-size="11" fill="#616e7c">${esc(where)}</text>`);
  gpu.forEach((c, i) => {
    const lx = 12 + i * 150;
    out.push(`<rect x="${lx}" y="48" width="12" height="12" rx="2" fill="${COLORS[c.id] ?? '#777'}"/><text x="${lx + 18}" y="58" fill="#1f2933">${esc(c.label)}</text>`);
  });
  for (let dcd = decades.lo; dcd <= decades.hi; dcd++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** dcd;
      if (v < 10 ** decades.lo || v > 10 ** decades.hi) continue;
      const gx = x(v).toFixed(1);
      out.push(`<line x1="${gx}" x2="${gx}" y1="${top - 6}" y2="${height - 30}" stroke="${m === 1 ? '#d0d5db' : '#eef0f2'}"/>`);
      out.push(`<text x="${gx}" y="${height - 14}" text-anchor="middle" fill="#52606d">${v}</text>`);
    }
  }
  const one = x(1).toFixed(1);
  out.push(`<line x1="${one}" x2="${one}" y1="${top - 6}" y2="${height - 30}" stroke="#1f2933" stroke-dasharray="4 3"/>`);
  rows.forEach((r, i) => {
    const y0 = top + i * groupH;
    out.push(`<text x="${labelW - 8}" y="${y0 + (gpu.length * bar) / 2 + 4}" text-anchor="end" fill="#1f2933">${esc(r.label)}</text>`);
    gpu.forEach((c, j) => {
      const v = r.d.xvec4[c.id];
      const y = y0 + j * bar;
      if (v == null || !(v > 0)) {
        const r = report.workloads[i].results[c.id];
        if (r?.skipped) return;
        const why = r?.held ? `${c.label}: held for --full` : r?.error ? `${c.label}: failed` : `${c.label}: n/a`;
        out.push(`<text x="${labelW + 4}" y="${y + bar - 1}" font-size="9" fill="#9aa0a6">${esc(why)}</text>`);
        return;
      }
      const w = Math.max(1, x(v) - labelW);
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${bar - 1}" fill="${COLORS[c.id] ?? '#777'}"><title>${esc(`${c.label}: ${v.toFixed(2)}× (${fmtMs(wr(report, i, c.id))} ms)`)}</title></rect>`);
    });
  });
  out.push(`<text x="${labelW + plotW / 2}" y="${height - 1}" text-anchor="middle" fill="#52606d">xvec4 (1 = one read + one write at copy speed)</text>`);
  out.push('</svg>');
  return out.join('\n');
}

function wr(report: BenchReport, i: number, id: string): number | null {
  return report.workloads[i].results[id]?.ms ?? null;
}

/** Workloads where normgpu is slower than a peer (speed-up below 1), for the summary. */
export function slowerThanPeers(report: BenchReport): string[] {
  const out: string[] = [];
  for (const wr of report.workloads) {
    const d = derive(report, wr);
    if (d.speedup != null && d.speedup < 1) {
      const peer = report.contenders.find((c) => c.id === d.fastestPeer)?.label ?? d.fastestPeer;
      out.push(`${workloadLabel(wr)}: normgpu ${fmtMs(wr.results.normgpu.ms)} ms vs ${peer} ${fmtMs(wr.results[d.fastestPeer!].ms)} ms (${d.speedup.toFixed(2)}×)`);
    }
  }
  return out;
}

/** A standalone Markdown report: where it ran, what each contender is, the tables, the chart. */
export function markdownReport(report: BenchReport, chartPath?: string): string {
  const env = report.environment;
  const lines = [
    `# normgpu benchmark (${env.scope ?? 'default'} run, ${report.startedAt.slice(0, 10)})`,
    '',
    `Machine: ${env.machine ?? '?'}. Browser: ${env.browser ?? env.userAgent ?? '?'}. Adapter: ${env.adapter ?? '?'}. The run took ${report.seconds} s in the page.`,
    '',
    ...report.contenders.map((c) => `- **${c.label}**: ${c.error ? `did not start: ${c.error}` : Object.entries(c.info).map(([k, v]) => `${k}: ${v}`).join('; ')}`),
    '',
  ];
  const slower = slowerThanPeers(report);
  lines.push(slower.length ? 'Where normgpu is slower than a peer:' : 'normgpu is faster than every peer on every workload of this run.', '');
  for (const s of slower) lines.push(`- ${s}`);
  if (slower.length) lines.push('');
  lines.push(markdownTables(report));
  if (chartPath) lines.push(`![xvec4 per workload and contender](${chartPath})`, '');
  return lines.join('\n');
}
