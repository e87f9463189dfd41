// The benchmark report's derived figures and tables (demo/bench/format.ts): pure functions.
import { describe, expect, test } from 'vitest';
import { chainTable, derive, markdownTables, slowerThanPeers } from '../demo/bench/format';
import type { BenchReport, ContenderResult } from '../demo/bench/runner';
import { allChains } from '../demo/bench/chains';
import { makeWorkload } from '../demo/bench/workloads';

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

describe('bench report', () => {
  test('speed-up is against the fastest of all peers, whichever ORT build it is', () => {
    const r = report();
    const d = derive(r, r.workloads[0]);
    expect(d.fastestPeer).toBe('ort-jsep');
    expect(d.speedup).toBeCloseTo(14.5 / 20);
    expect(d.xvec4.normgpu).toBeCloseTo(10);
    expect(slowerThanPeers(r)).toEqual(['LayerNorm [2048,768]: normgpu 20.0 ms vs ort-jsep 14.5 ms (0.72×)']);
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
