// The benchmark report's derived figures and tables (demo/bench/format.ts): pure functions.
import { describe, expect, test } from 'vitest';
import { ceilingLines, chainTable, derive, markdownTables, slowerThanPeers } from '../demo/bench/format';
import type { BenchReport, ContenderResult } from '../demo/bench/runner';
import type { CeilingResult, FloorPart, KernelShape } from '../demo/bench/ceilings';
import { allChains } from '../demo/bench/chains';
import { accessFloor, makeWorkload, type OpKind } from '../demo/bench/workloads';

const result = (ms: number | null, extra: Partial<ContenderResult> = {}): ContenderResult => ({
  ms, wallMs: ms, readMs: null, samples: [], method: ms == null ? null : 'timestamp', maxError: 0, iterations: ms == null ? 0 : 10, ...extra,
});

function report(): BenchReport {
  const w = makeWorkload('layerNorm', 'rows', [2048, 768]);
  const contenders = ['normgpu', 'tfjs', 'ort-jsep', 'ort-jsep-nchw', 'ort-webgpu', 'ort-webgpu-nchw'].map((id) => ({
    id, label: id, kind: 'gpu' as const, info: {},
  }));
  const [ln, gn] = allChains();
  return {
    version: 1, startedAt: '2026-01-01T00:00:00Z', finishedAt: '', seconds: 1, environment: {}, contenders,
    ceilings: { start: [{ numel: w.numel, bytes: w.bytes, copyMs: 1, vec4Ms: 2, method: 'timestamp' }], end: [] },
    workloads: [{
      workload: w,
      results: {
        normgpu: result(20),
        tfjs: result(300),
        'ort-jsep': result(14.5),
        'ort-jsep-nchw': result(null, { skipped: 'same graph' }),
        'ort-webgpu': result(190),
        'ort-webgpu-nchw': result(null, { skipped: 'same graph' }),
      },
    }],
    chains: [
      {
        id: ln.id, workload: ln.workload, length: 100, iterations: 20, ratio: 3, maxError: 1e-6, note: 'normalizeSerial:fused-serial',
        batched: { wallMs: 10, msPerOp: 0.1, gpuMs: 9, submits: 1, samples: [] },
        perOp: { wallMs: 30, msPerOp: 0.3, gpuMs: 25, submits: 100, samples: [] },
      },
      { id: gn.id, workload: gn.workload, length: 50, iterations: 3, ratio: null, maxError: null, batched: null, perOp: null, error: 'device lost' },
    ],
  };
}

/** normgpu alone on every op at one conv shape and on the row ops, with floor parts in the ceilings. */
function floorReport(): BenchReport {
  const ops: OpKind[] = ['bnEval', 'bnTrain', 'instanceNorm', 'groupNorm', 'layerNorm', 'rmsNorm'];
  const workloads = [...ops.map((op) => makeWorkload(op, 'NHWC', [8, 64, 56, 56])), ...(['layerNorm', 'rmsNorm'] as const).map((op) => makeWorkload(op, 'rows', [2048, 768]))];
  // vec4 2 ms, read 1.2, scale 3, affine 4 (means of start and end) at both sizes.
  const parts = (numel: number, read: number) => ({ numel, bytes: numel * 8, copyMs: 1, vec4Ms: 2, readMs: read, scaleMs: 3, affineMs: 4, paramLength: 768, method: 'timestamp' as const });
  return {
    version: 1, startedAt: '2026-01-01T00:00:00Z', finishedAt: '', seconds: 1, environment: {},
    contenders: [{ id: 'normgpu', label: 'normgpu', kind: 'gpu', info: {} }],
    ceilings: { start: [parts(workloads[0].numel, 1), parts(workloads[6].numel, 1)], end: [parts(workloads[0].numel, 1.4), parts(workloads[6].numel, 1.4)] },
    workloads: workloads.map((w) => ({ workload: w, results: { normgpu: result(8) } })),
    chains: [],
  };
}

/**
 * floorReport with every part also timed in the looped shape, as measureCeilings records it.
 * One vec4 per invocation: copy 2, read 1 → 1.4, scale 3, affine 4 (as floorReport); looped:
 * copy 1, read 1.5 → 1.2, scale 2.5, affine 5. So the floor takes the looped copy and scale,
 * the one-vec4 affine, and for read the one-vec4 time at the start and the looped one at the end.
 */
function loopedReport(): BenchReport {
  const r = floorReport();
  const loop = (c: CeilingResult, read: number): CeilingResult => {
    const loopMs: Record<FloorPart, number> = { copy: 1, read, scale: 2.5, affine: 5 };
    const one: Record<FloorPart, number> = { copy: c.vec4Ms, read: c.readMs!, scale: c.scaleMs!, affine: c.affineMs! };
    const fastest = Object.fromEntries((Object.keys(loopMs) as FloorPart[]).map((k) => [k, loopMs[k] < one[k] ? 'loop' : 'one'])) as Record<FloorPart, KernelShape>;
    return { ...c, loopMs, loopVec4s: 16, fastest };
  };
  r.ceilings = { start: r.ceilings.start.map((c) => loop(c, 1.5)), end: r.ceilings.end.map((c) => loop(c, 1.2)) };
  return r;
}

describe('bench report', () => {
  test('speed-up is against the fastest of all peers, whichever ORT build it is', () => {
    const r = report();
    const d = derive(r, r.workloads[0]);
    expect(d.fastestPeer).toBe('ort-jsep');
    expect(d.speedup).toBeCloseTo(14.5 / 20);
    expect(d.xvec4.normgpu).toBeCloseTo(10);
    expect(slowerThanPeers(r)).toEqual(['LayerNorm [2048,768]: normgpu 20.0 ms vs ort-jsep 14.5 ms (0.72×)']);
  });

  test('each workload\'s access floor follows its statistics and its affine parameters', () => {
    const floor = (op: OpKind, layout: 'NCHW' | 'NHWC' | 'rows') => accessFloor(makeWorkload(op, layout, layout === 'rows' ? [2048, 768] : [8, 64, 56, 56]));
    expect(floor('bnEval', 'NCHW')).toEqual({ read: 0, apply: 'copy' });
    for (const op of ['bnTrain', 'instanceNorm', 'groupNorm'] as const) expect(floor(op, 'NHWC')).toEqual({ read: 1, apply: 'copy' });
    expect(floor('layerNorm', 'NCHW')).toEqual({ read: 1, apply: 'affine' });
    expect(floor('rmsNorm', 'NCHW')).toEqual({ read: 1, apply: 'scale' });
    expect(floor('layerNorm', 'rows')).toEqual({ read: 0, apply: 'affine' });
    expect(floor('rmsNorm', 'rows')).toEqual({ read: 0, apply: 'scale' });
  });

  test('floor sums the measured parts; xfloor = time ÷ floor; the table shows the floor as xvec4', () => {
    const r = floorReport();
    const floors = r.workloads.map((wr) => derive(r, wr).floorMs);
    expect(floors.map((f) => f!.toFixed(1))).toEqual(['2.0', '3.2', '3.2', '3.2', '5.2', '4.2', '4.0', '3.0']);
    expect(derive(r, r.workloads[1]).xfloor.normgpu).toBeCloseTo(8 / 3.2);
    const md = markdownTables(r);
    expect(md).toContain('| workload | vec4 copy | copyB2B | normgpu | GB/s | xvec4 | floor | xfloor | +read |');
    // BatchNorm train: 8 ms = 4.00 xvec4; floor read + copy = 3.2 ms = 1.60 xvec4; 2.50 xfloor.
    expect(md).toContain('| BatchNorm train [8,64,56,56] NHWC | 2.00 | 1.00 | 8.00 | 1.6 | 4.00 | 1.60 | 2.50 | – |');
    expect(md).toContain('| LayerNorm [2048,768] | 2.00 | 1.00 | 8.00 | 1.6 | 4.00 | 2.00 | 2.00 | – |');
    expect(md).toContain('(copy for BatchNorm eval; read + copy for BatchNorm train, InstanceNorm, GroupNorm-32; read + affine for LayerNorm; read + scale for RMSNorm; affine for LayerNorm rows; scale for RMSNorm rows)');
    expect(md).toContain('- 1,572,864 floats: vec4 copy 2.00 → 2.00 ms, copyBufferToBuffer 1.00 → 1.00 ms; floor parts (P = 768): read 1.00 → 1.40 ms (0.60×), scale 3.00 → 3.00 ms (1.50×), affine 4.00 → 4.00 ms (2.00×)');
    expect(ceilingLines(r)).toHaveLength(2);
  });

  test('each floor part takes the faster of its two shapes; xvec4 stays against the one-vec4 copy', () => {
    const r = loopedReport();
    expect(r.ceilings.start[0].fastest).toEqual({ copy: 'loop', read: 'one', scale: 'loop', affine: 'one' });
    expect(r.ceilings.end[0].fastest).toEqual({ copy: 'loop', read: 'loop', scale: 'loop', affine: 'one' });
    // copy 1 (looped), read (1 + 1.2) / 2 = 1.1, scale 2.5 (looped), affine 4 (one vec4).
    const floors = r.workloads.map((wr) => derive(r, wr).floorMs);
    expect(floors.map((f) => f!.toFixed(2))).toEqual(['1.00', '2.10', '2.10', '2.10', '5.10', '3.60', '4.00', '2.50']);
    const d = derive(r, r.workloads[1]);
    expect(d.vec4Ms).toBe(2);
    expect(d.xvec4.normgpu).toBeCloseTo(4);
    expect(d.xfloor.normgpu).toBeCloseTo(8 / 2.1);
    const md = markdownTables(r);
    // BatchNorm train: 8 ms = 4.00 xvec4; floor read + copy = 2.1 ms = 1.05 xvec4; 3.81 xfloor.
    expect(md).toContain('| BatchNorm train [8,64,56,56] NHWC | 2.00 | 1.00 | 8.00 | 1.6 | 4.00 | 1.05 | 3.81 | – |');
    expect(md).toContain('each pass\'s time in the faster of two kernel shapes on this adapter, one vec4 per invocation (GPU-shaped) or a loop of 16 consecutive vec4s per invocation');
    expect(ceilingLines(r)[0]).toBe('1,605,632 floats: vec4 copy 2.00 → 2.00 ms (16 vec4/invocation: 1.00* → 1.00* ms), copyBufferToBuffer 1.00 → 1.00 ms; '
      + 'floor parts (P = 768; ms with one | 16 vec4 per invocation, * = the faster shape, which the floor takes; in brackets its mean ÷ the vec4 copy): '
      + 'copy (0.50×), read 1.00* → 1.40 | 1.50 → 1.20* ms (0.55×), scale 3.00 → 3.00 | 2.50* → 2.50* ms (1.25×), affine 4.00* → 4.00* | 5.00 → 5.00 ms (2.00×)');
  });

  test('a report from before the looped shape still formats, with one-vec4 floors', () => {
    const md = markdownTables(floorReport());
    expect(md).toContain('each pass\'s time as a kernel with one vec4 per invocation');
    expect(md).not.toContain('faster of two');
  });

  test('a report whose ceilings lack the floor parts shows no floor', () => {
    const r = report();
    expect(derive(r, r.workloads[0]).floorMs).toBeNull();
    expect(markdownTables(r)).toContain('| LayerNorm [2048,768] | 2.00 | 1.00 | 20.0 | 0.6 | 10.00 | – | – | – |');
    expect(ceilingLines(r)).toEqual([]);
  });

  test('skipped columns are marked and explained, not counted as failures', () => {
    const md = markdownTables(report());
    expect(md).toContain('| 14.5 | –³ | 190 | –³ | 0.72× vs ort-jsep |');
    expect(md).toContain('³ Not run (another column covers it):');
    expect(md).toContain('- ort-jsep-nchw: same graph (LayerNorm)');
    expect(md).not.toContain('Failures');
  });

  test('the chain table gives time per op in both modes, the ratio, the submits and failures', () => {
    const md = chainTable(report());
    expect(md).toContain('| LayerNorm [1,768] | 100 | 0.10 | 1 | 0.30 | 100 | 3.00× | 0.09 | 0.25 | 1.0e-6 | normalizeSerial:fused-serial |');
    expect(md).toContain('| GroupNorm-32 [8,64,56,56] NCHW | 50 | fail: device lost |');
    expect(chainTable({ ...report(), chains: [] })).toBe('');
  });

  test('chains are named so that --filter matches them like workloads', () => {
    expect(allChains().map((c) => c.id)).toEqual(['chain/layerNorm/rows/1x768/100', 'chain/groupNorm/NCHW/8x64x56x56/50']);
    expect(allChains(4).map((c) => c.iterations)).toEqual([4, 4]);
  });
});
