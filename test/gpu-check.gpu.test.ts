/**
 * `npm run bench:node -- --gpu-check` in its reduced form on this machine's adapter: a sample
 * of each golden set (forward and backward) passes with both kernel families, the benchmark subset reports xvec4, the traffic
 * ratio and the CPU ratio, and a workload the budget leaves out is reported, not lost.
 */
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { makeWorkload } from '../demo/bench/workloads';
import { gpuCheck } from '../scripts/gpu-check';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('gpu-check: adapter, goldens on both kernel families, a benchmark subset within the budget', async () => {
  const lines: string[] = [];
  const report = await gpuCheck({
    root: ROOT,
    budgetS: 45,
    // One case per op family and input kind: compiling every specialisation is what takes time here.
    cases: (c) => /^[a-z]0(00|04|09|13|15|17|28|64|67|71)_/.test(c.id),
    workloads: [makeWorkload('layerNorm', 'rows', [64, 768], 'default', 3), makeWorkload('groupNorm', 'NHWC', [2, 64, 8, 8], 'default', 3)],
    log: (l) => lines.push(l),
  });
  expect(report.adapter.length).toBeGreaterThan(0);
  expect(lines[0]).toContain(report.adapter);
  expect(report.accuracy.map((a) => a.kernels)).toEqual(expect.arrayContaining(['auto', 'parallel']));
  for (const a of report.accuracy) {
    expect(a.failures).toEqual([]);
    expect(a.passed).toBeGreaterThan(0);
  }
  expect(report.notRun).toEqual([]);
  expect(report.bench.map((b) => b.id)).toEqual(['layerNorm/rows/64x768', 'groupNorm/NHWC/2x64x8x8']);
  for (const b of report.bench) {
    expect(b.ms).toBeGreaterThan(0);
    expect(b.xvec4).toBeGreaterThan(0);
    expect(b.xfloor).toBeGreaterThan(0);
    expect(b.traffic).toBeGreaterThanOrEqual(1);
    expect(b.vsCpu).toBeGreaterThan(0);
  }
  expect(report.ok).toBe(true);
  expect(lines.some((l) => l.startsWith('| layerNorm/rows/64x768 |'))).toBe(true);
}, 90_000);

test('gpu-check: a spent budget skips the benchmark and says which workloads it left out', async () => {
  const report = await gpuCheck({
    root: ROOT, budgetS: 0.001, golden: [], workloads: [makeWorkload('rmsNorm', 'rows', [8, 64], 'default', 2)],
  });
  expect(report.bench).toEqual([]);
  expect(report.notRun).toEqual(['rmsNorm/rows/8x64']);
  expect(report.ok).toBe(true); // nothing measured is nothing failed
}, 90_000);
