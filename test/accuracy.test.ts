/**
 * `npm run accuracy` (dist/accuracy-cli.js, built by `npm test`) on a golden set it has not seen:
 * written here in the manifest's format with shapes, layouts and params the vendored set lacks
 * (3-D and 5-D inputs, odd extents, one and C groups, an int normalized_shape, eps None, other
 * moments axes), its expected values from the naive float64 oracle of test/support/reference.ts
 * (not the engine's CPU backend). Checks the JSON report's format, that every case passes on
 * both backends, that an op it lacks is reported unsupported, and that a wrong reference fails
 * the run with a non-zero exit. The model-format goldens (kinds half, fused, module:
 * test/golden-model) pass at the manifest's bars, and an unseen set in that format (float16 with
 * a residual, fused epilogues on other ops and shapes, references from the oracle and an
 * independent erf) passes too.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { REPO_ROOT } from './browser/harness';
import { fromHalfBits, roundHalf, toHalfBits } from '../src/half';
import { affineParams, generate, sizeOf, type Distribution } from './support/gpu';
import {
  refBatchNormEval, refBatchNormTrain, refGroupNorm, refInstanceNorm, refLayerNorm, refMoments, refRmsNorm,
} from './support/reference';

const CLI = join(REPO_ROOT, 'dist', 'accuracy-cli.js');
const run = promisify(execFile);
const FLOAT32_EPS = 2 ** -23;
let dir = '';

interface Spec {
  op: string;
  layout: string;
  shape: number[];
  dist: Distribution;
  params: Record<string, unknown>;
  affine?: boolean;
}

const SPECS: Spec[] = [
  { op: 'batch_norm_train', layout: 'NCDHW', shape: [3, 5, 4, 7, 3], dist: 'offset', params: { momentum: 0.3, eps: 1e-3 }, affine: true },
  { op: 'batch_norm_train', layout: 'NDHWC', shape: [3, 4, 7, 3, 5], dist: 'normal', params: { momentum: 0.1, eps: 1e-5 } },
  { op: 'batch_norm_train', layout: 'NC', shape: [17, 6], dist: 'pixels', params: { momentum: 0.5, eps: 1e-5 }, affine: true },
  { op: 'batch_norm_eval', layout: 'NCL', shape: [5, 3, 29], dist: 'offset', params: { eps: 1e-5 }, affine: true },
  { op: 'instance_norm', layout: 'NLC', shape: [2, 31, 6], dist: 'offset', params: { eps: 1e-5 }, affine: true },
  { op: 'instance_norm', layout: 'NCDHW', shape: [2, 3, 5, 3, 7], dist: 'normal', params: { eps: 1e-5 } },
  { op: 'group_norm', layout: 'NCHW', shape: [3, 12, 5, 7], dist: 'offset', params: { num_groups: 1, eps: 1e-5 }, affine: true },
  { op: 'group_norm', layout: 'NHWC', shape: [3, 5, 7, 12], dist: 'normal', params: { num_groups: 12, eps: 1e-5 }, affine: true },
  { op: 'group_norm', layout: 'NDHWC', shape: [2, 3, 4, 5, 6], dist: 'pixels', params: { num_groups: 3, eps: 1e-5 } },
  { op: 'layer_norm', layout: 'ROWS', shape: [37, 300], dist: 'offset', params: { normalized_shape: 300, eps: 1e-5 }, affine: true },
  { op: 'layer_norm', layout: 'NCHW', shape: [2, 3, 5, 13], dist: 'normal', params: { normalized_shape: [5, 13], eps: 1e-6 }, affine: true },
  { op: 'rms_norm', layout: 'ROWS', shape: [19, 257], dist: 'offset', params: { normalized_shape: [257], eps: null }, affine: true },
  { op: 'moments', layout: 'NCHW', shape: [3, 4, 5, 6], dist: 'offset', params: { axes: [2, 3] } },
  { op: 'moments', layout: 'NCL', shape: [7, 3, 11], dist: 'normal', params: { axes: [0, 2] } },
];

const f32 = (name: string, data: ArrayLike<number>) => {
  writeFileSync(join(dir, name), new Uint8Array(Float32Array.from(data).buffer));
  return name;
};

/** One golden case: inputs and the oracle's outputs as files, and its manifest entry. */
function goldenCase(s: Spec, i: number): Record<string, unknown> {
  const id = `u${String(i).padStart(3, '0')}_${s.op}_${s.layout}`;
  const layout = ['NDHWC', 'NHWC', 'NLC'].includes(s.layout) ? 'channels-last' : 'channels-first';
  const x = generate(s.dist, sizeOf(s.shape), 900 + i);
  const entry: Record<string, unknown> = { id, op: s.op, layout: s.layout, shape: s.shape, dist: s.dist, params: { ...s.params, affine: !!s.affine }, input: f32(`${id}_x.f32`, x) };
  const channels = layout === 'channels-last' ? s.shape[s.shape.length - 1] : s.shape[1];
  const normalized = s.op === 'layer_norm' || s.op === 'rms_norm'
    ? sizeOf([s.params.normalized_shape as number | number[]].flat()) : channels;
  const p: { weight?: Float32Array; bias?: Float32Array } = s.affine ? affineParams(normalized, 950 + i) : {};
  if (s.affine) {
    entry.weight = f32(`${id}_weight.f32`, p.weight!);
    if (s.op !== 'rms_norm') entry.bias = f32(`${id}_bias.f32`, p.bias!);
  }
  const eps = (s.params.eps as number | null) ?? FLOAT32_EPS;
  const affine = { weight: p.weight, bias: s.op === 'rms_norm' ? undefined : p.bias };
  let output: Float32Array | undefined;
  switch (s.op) {
    case 'batch_norm_train': {
      const mean = Float64Array.from({ length: channels }, (_, c) => 0.1 * c);
      const variance = Float64Array.from({ length: channels }, (_, c) => 1 + 0.5 * c);
      entry.running_mean = f32(`${id}_rm.f32`, mean);
      entry.running_var = f32(`${id}_rv.f32`, variance);
      const running = { mean: Float64Array.from(Float32Array.from(mean)), var: Float64Array.from(Float32Array.from(variance)), momentum: s.params.momentum as number };
      output = refBatchNormTrain(x, s.shape, layout, eps, affine, running);
      entry.running_mean_out = f32(`${id}_rm_out.f32`, running.mean);
      entry.running_var_out = f32(`${id}_rv_out.f32`, running.var);
      break;
    }
    case 'batch_norm_eval': {
      const mean = Float32Array.from({ length: channels }, (_, c) => 1e4 + c);
      const variance = Float32Array.from({ length: channels }, (_, c) => 0.5 + c);
      entry.running_mean = f32(`${id}_rm.f32`, mean);
      entry.running_var = f32(`${id}_rv.f32`, variance);
      output = refBatchNormEval(x, s.shape, layout, eps, affine, mean, variance);
      break;
    }
    case 'instance_norm': output = refInstanceNorm(x, s.shape, layout, eps, affine); break;
    case 'group_norm': output = refGroupNorm(x, s.shape, layout, s.params.num_groups as number, eps, affine); break;
    case 'layer_norm': output = refLayerNorm(x, normalized, eps, affine); break;
    case 'rms_norm': output = refRmsNorm(x, normalized, eps, p.weight); break;
    case 'moments': {
      const axes = s.params.axes as number[];
      const biased = refMoments(x, s.shape, axes, 0);
      entry.mean = f32(`${id}_mean.f32`, biased.mean);
      entry.var_biased = f32(`${id}_var_biased.f32`, biased.variance);
      entry.var_unbiased = f32(`${id}_var_unbiased.f32`, refMoments(x, s.shape, axes, 1).variance);
      break;
    }
  }
  if (output) entry.output = f32(`${id}_output.f32`, output);
  return entry;
}

interface Report {
  backend: string;
  adapter: string | null;
  cases: { id: string; op: string; layout: string | null; maxAbsError: number | null; maxScaledError: number | null; tolerance: number; pass: boolean | null; reason?: string }[];
}

async function accuracy(golden: string, backend: string): Promise<{ code: number; report: Report; stdout: string }> {
  const json = join(dir, `report-${backend}-${Math.random().toString(36).slice(2)}.json`);
  let code = 0;
  let stdout = '';
  try {
    stdout = (await run(process.execPath, [CLI, '--golden', golden, '--backend', backend, '--json', json], { timeout: 120_000 })).stdout;
  } catch (e) {
    code = (e as { code?: number }).code ?? -1;
    stdout = (e as { stdout?: string }).stdout ?? '';
  }
  return { code, report: JSON.parse(readFileSync(json, 'utf8')) as Report, stdout };
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/accuracy-cli.js is missing: run `npm run build` first (npm test does)');
  dir = mkdtempSync(join(tmpdir(), 'normgpu-golden-'));
  const cases = SPECS.map(goldenCase);
  cases.push({ id: 'u999_future_op', op: 'weight_norm', layout: 'NCHW', shape: [1, 2, 3, 4], params: {} });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ error_measure: 'max over elements of |actual - expected| / (1 + |expected|)', cases }));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.each(['webgpu', 'cpu'])('an unseen golden set passes on %s, with the report format of the issue', async (backend) => {
  const { code, report, stdout } = await accuracy(dir, backend);
  console.log(stdout.trim());
  expect(code, stdout).toBe(0);
  expect(report.backend).toBe(backend);
  if (backend === 'webgpu') expect(report.adapter).toBeTypeOf('string');
  expect(report.cases).toHaveLength(SPECS.length + 1);
  for (const c of report.cases.slice(0, SPECS.length)) {
    expect(Object.keys(c).sort()).toEqual(['id', 'layout', 'maxAbsError', 'maxScaledError', 'op', 'pass', 'tolerance']);
    expect(c.pass, `${c.id}: ${c.maxScaledError}`).toBe(true);
    // Held to the product's bar, tighter than the per-case tolerance for `offset` inputs.
    expect(c.maxScaledError!, c.id).toBeLessThanOrEqual(1e-5);
  }
  const future = report.cases.at(-1)!;
  expect(future).toMatchObject({ id: 'u999_future_op', pass: null, maxScaledError: null });
  expect(future.reason).toMatch(/weight_norm/);
});

test('a wrong reference fails its case and the run', async () => {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { cases: Record<string, unknown>[] };
  const c = manifest.cases.find((k) => k.op === 'layer_norm')!;
  const bad = new Float32Array(readFileSync(join(dir, c.output as string)).buffer.slice(0));
  bad[7] += 1e-3;
  const wrongDir = mkdtempSync(join(tmpdir(), 'normgpu-golden-bad-'));
  try {
    for (const k of Object.values(c)) if (typeof k === 'string' && k.endsWith('.f32')) writeFileSync(join(wrongDir, k), readFileSync(join(dir, k)));
    writeFileSync(join(wrongDir, 'bad_output.f32'), new Uint8Array(bad.buffer));
    writeFileSync(join(wrongDir, 'manifest.json'), JSON.stringify({ cases: [{ ...c, dist: 'normal', output: 'bad_output.f32' }] }));
    const { code, report } = await accuracy(wrongDir, 'cpu');
    expect(code).not.toBe(0);
    expect(report.cases[0].pass).toBe(false);
    expect(report.cases[0].reason).toMatch(/max scaled error/);
  } finally {
    rmSync(wrongDir, { recursive: true, force: true });
  }
});

test.each(['webgpu', 'cpu'])('the model goldens (float16, fused epilogues, modules) pass on %s', async (backend) => {
  const golden = join(REPO_ROOT, 'test', 'golden-model');
  const manifest = JSON.parse(readFileSync(join(golden, 'manifest.json'), 'utf8')) as { cases: { id: string; kind: string; dist?: string }[] };
  const { code, report, stdout } = await accuracy(golden, backend);
  console.log(stdout.trim());
  expect(code, stdout).toBe(0);
  expect(report.cases.map((c) => c.id)).toEqual(manifest.cases.map((c) => c.id));
  for (const [i, c] of report.cases.entries()) {
    const kind = manifest.cases[i].kind;
    expect(Object.keys(c).sort()).toEqual(['id', 'layout', 'maxAbsError', 'maxScaledError', 'op', 'pass', 'tolerance']);
    // The manifest's bars: one half ulp for float16, 1e-5 for fused (1e-4 with offset inputs) and modules.
    const bar = kind === 'half' ? 9.8e-4 : kind === 'fused' && manifest.cases[i].dist === 'offset' ? 1e-4 : 1e-5;
    expect(c.tolerance, c.id).toBe(bar);
    expect(c.pass, `${c.id}: ${c.maxScaledError}`).toBe(true);
    expect(c.maxScaledError!, c.id).toBeLessThanOrEqual(bar);
  }
});

/** erf by Simpson's rule on 2/sqrt(pi) exp(-t²) (independent of the engine's erfc). */
function oracleErf(x: number): number {
  const n = 4000;
  const h = x / n;
  let s = 1 + Math.exp(-x * x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return (2 / Math.sqrt(Math.PI)) * (s * h) / 3;
}

const ORACLE_ACTIVATIONS: Record<string, (v: number) => number> = {
  relu: (v) => Math.max(0, v),
  silu: (v) => v / (1 + Math.exp(-v)),
  gelu: (v) => 0.5 * v * (1 + oracleErf(v / Math.SQRT2)),
  gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
};

test.each(['webgpu', 'cpu'])('an unseen model-format set (float16 and fused, other shapes and epilogues) passes on %s', async (backend) => {
  const modelDir = mkdtempSync(join(tmpdir(), 'normgpu-golden-model-'));
  try {
    const file = (name: string, data: ArrayLike<number>, half = false) => {
      writeFileSync(join(modelDir, name), new Uint8Array((half ? toHalfBits(data) : Float32Array.from(data)).buffer));
      return name;
    };
    const specs = [
      { kind: 'half', op: 'layer_norm', layout: 'ROWS', shape: [7, 33], dist: 'normal' as Distribution, params: { normalized_shape: [33], eps: 1e-5, residual: true, activation: 'gelu_tanh' } },
      { kind: 'half', op: 'group_norm', layout: 'NHWC', shape: [2, 3, 5, 6], dist: 'normal' as Distribution, params: { num_groups: 3, eps: 1e-5, activation: 'silu' } },
      { kind: 'fused', op: 'instance_norm', layout: 'NHWC', shape: [2, 4, 3, 5], dist: 'offset' as Distribution, params: { eps: 1e-5, residual: true, activation: 'gelu' } },
      { kind: 'fused', op: 'rms_norm', layout: 'ROWS', shape: [5, 17], dist: 'normal' as Distribution, params: { normalized_shape: [17], eps: 1e-6, activation: 'silu' } },
      { kind: 'fused', op: 'group_norm', layout: 'NCHW', shape: [3, 6, 5, 3], dist: 'normal' as Distribution, params: { num_groups: 2, eps: 1e-5, residual: true, activation: 'relu' } },
    ];
    const cases = specs.map((s, i) => {
      const id = `v${i}_${s.op}_${s.layout}`;
      const half = s.kind === 'half';
      const ext = half ? 'f16' : 'f32';
      const n = sizeOf(s.shape);
      const layout = s.layout === 'NHWC' ? 'channels-last' : 'channels-first';
      const asStored = (v: Float32Array) => (half ? fromHalfBits(toHalfBits(v)) : v);
      const x = asStored(generate(s.dist, n, 700 + i));
      const entry: Record<string, unknown> = { id, kind: s.kind, op: s.op, layout: s.layout, shape: s.shape, dtype: half ? 'float16' : 'float32', dist: s.dist, params: s.params, input: file(`${id}_x.${ext}`, x, half) };
      let h = x;
      if (s.params.residual) {
        const r = asStored(generate('normal', n, 800 + i));
        entry.residual = file(`${id}_residual.${ext}`, r, half);
        h = Float32Array.from(x, (v, k) => (half ? roundHalf(Math.fround(v + r[k])) : v + r[k]));
        entry.sum = file(`${id}_sum.f32`, h);
      }
      const k = s.op === 'layer_norm' || s.op === 'rms_norm' ? s.shape[s.shape.length - 1] : layout === 'channels-last' ? s.shape[s.shape.length - 1] : s.shape[1];
      const p = affineParams(k, 750 + i);
      entry.weight = file(`${id}_weight.f32`, p.weight);
      if (s.op !== 'rms_norm') entry.bias = file(`${id}_bias.f32`, p.bias);
      const affine = { weight: p.weight, bias: s.op === 'rms_norm' ? undefined : p.bias };
      const eps = s.params.eps;
      const y = s.op === 'layer_norm' ? refLayerNorm(h, k, eps, affine)
        : s.op === 'rms_norm' ? refRmsNorm(h, k, eps, p.weight)
        : s.op === 'instance_norm' ? refInstanceNorm(h, s.shape, layout, eps, affine)
        : refGroupNorm(h, s.shape, layout, (s.params as { num_groups: number }).num_groups, eps, affine);
      entry.output = file(`${id}_output.f32`, Array.from(y, ORACLE_ACTIVATIONS[s.params.activation]));
      return entry;
    });
    writeFileSync(join(modelDir, 'manifest.json'), JSON.stringify({ cases }));
    const { code, report, stdout } = await accuracy(modelDir, backend);
    console.log(stdout.trim());
    expect(code, stdout).toBe(0);
    for (const [i, c] of report.cases.entries()) {
      expect(c.pass, `${c.id}: ${c.maxScaledError}`).toBe(true);
      expect(c.maxScaledError!, c.id).toBeLessThanOrEqual(specs[i].kind === 'half' ? 9.8e-4 : 1e-5);
    }
  } finally {
    rmSync(modelDir, { recursive: true, force: true });
  }
});
