/**
 * The statistics kernels at the limits of float32 and of the dispatch grid, GPU against the
 * float64 CPU backend on every kernel family (`kernels: 'auto' | 'parallel' | 'serial'`):
 * - mean of squares (RMSNorm) whose x² overflows (|x| > 1.8e19) or underflows (|x| < 1e-19);
 * - variances whose shifted squares overflow (deviations > 1.8e19), up to inputs of ±3e38 whose
 *   range exceeds float32, and spreads of 1e-30 whose squares underflow;
 * - NaN and infinities in such groups keep the CPU backend's (PyTorch's) NaN pattern;
 * - no dispatch dimension above maxComputeWorkgroupsPerDimension, however extreme the view;
 * - BatchNorm training updates the running statistics whatever kernel the plan picks.
 * Shapes are chosen so that every plan runs: the fused kernels (rows, serial scalar and vec4),
 * and the staged reduce variants (rows with several chunks, columns, serial).
 *
 * TOLERANCE: the accuracy bar, max scaled error |gpu − cpu| / (1 + |cpu|) ≤ 1e-5, with NaN
 * meeting NaN and an infinity the same infinity. All GPU work runs inside error scopes.
 */
import { create, globals } from 'webgpu';
import { describe, expect, test } from 'vitest';
import { createEngine, type Engine, type OpName, type Tensor } from '../src/index';
import { planGpu, type AdapterTraits } from '../src/plan/gpu-plan';
import { planColumnStats } from '../src/plan/column-stats';
import {
  batchNormSpec, groupNormSpec, instanceNormSpec, layerNormSpec, momentsSpec, rmsNormSpec, type NormSpec,
} from '../src/plan/spec';
import { makeGpuEngine, mulberry32, normalSampler, scaledError, withEngines, withValidation, worstElement } from './support/gpu';

const TOL = 1e-5;
const FAMILIES = ['auto', 'parallel', 'serial'] as const;
type Family = (typeof FAMILIES)[number];

const gpus = {} as Record<Family, Engine>;
let cpu: Engine;

withEngines(async () => {
  for (const f of FAMILIES) gpus[f] = await makeGpuEngine({ kernels: f });
  return [...Object.values(gpus), cpu = await createEngine({ backend: 'cpu' })];
});

type Options = Record<string, unknown>;

/** Runs `op` on one engine; returns every output (y, or mean and variance) by name. */
async function run(engine: Engine, op: OpName, data: Float32Array, shape: number[], opts: Options): Promise<Record<string, Float32Array>> {
  const owned: Tensor[] = [];
  const keep = (t: Tensor) => (owned.push(t), t);
  try {
    const x = keep(engine.tensor(data, shape, { layout: (opts.layout as never) ?? 'channels-first' }));
    const { layout: _, ...rest } = opts;
    if (op === 'moments') {
      const m = engine.moments(x, rest as never);
      return { mean: await keep(m.mean).read(), variance: await keep(m.variance).read() };
    }
    const call = engine[op].bind(engine) as (x: Tensor, o: object) => Tensor;
    return { y: await keep(call(x, rest)).read() };
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** GPU (one family, or `engine`) against the CPU backend, within the bar; returns the GPU outputs. */
async function agree(family: Family, op: OpName, data: Float32Array, shape: number[], opts: Options = {}, engine?: Engine) {
  const gpu = engine ?? gpus[family];
  const got = await withValidation(gpu, () => run(gpu, op, data, shape, opts));
  const ref = await run(cpu, op, data, shape, opts);
  const x = gpu.tensor(data, shape, { layout: (opts.layout as never) ?? 'channels-first' });
  const { layout: _, ...rest } = opts;
  const plan = gpu.explain(op, x, rest).kernels.map((k) => `${k.stage}:${k.variant}`).join(' ');
  x.dispose();
  for (const k of Object.keys(ref)) {
    expect(scaledError(got[k], ref[k]), `${op} ${k} [${shape}] ${family} (${plan}): ${worstElement(got[k], ref[k])}`).toBeLessThanOrEqual(TOL);
  }
  return got;
}

const f32 = (values: readonly number[]) => Float32Array.from(values);

/** `n` values of `scale` · N(0, 1) (+ `offset`), seeded. */
function normal(n: number, scale: number, seed: number, offset = 0): Float32Array {
  const next = normalSampler(mulberry32(seed));
  return Float32Array.from({ length: n }, () => offset + scale * next());
}

/**
 * `n` values with magnitudes spread log-uniformly over [lo, hi], seeded; random signs unless
 * `positive` (means of huge values of both signs cancel below what float32 sums can resolve).
 */
function magnitudes(n: number, lo: number, hi: number, seed: number, positive = false): Float32Array {
  const rng = mulberry32(seed);
  const sign = () => (positive || rng() < 0.5 ? 1 : -1);
  return Float32Array.from({ length: n }, () => sign() * Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo))));
}

describe.each(FAMILIES)('RMSNorm mean of squares (%s kernels)', (family) => {
  test('x² overflows float32: [1e20, 2e20, 3e20, 1e20]', async () => {
    const y = (await agree(family, 'rmsNorm', f32([1e20, 2e20, 3e20, 1e20]), [1, 4], { normalizedShape: [4] })).y;
    expect(Array.from(y, (v) => Math.round(v * 1e4) / 1e4)).toEqual([0.5164, 1.0328, 1.5492, 0.5164]);
  });

  // [r, 4]: fused kernels; [r, 5]: staged (columns on the parallel family); [2, 9000]: rows of
  // several workgroups; [3, 3]: the serial reduce of small groups.
  test.each([[3, 4], [3, 5], [2, 9000], [3, 3]])('huge, tiny and mixed magnitudes [%i, %i]', async (rows, d) => {
    const n = rows * d;
    const weight = normal(d, 1, 7, 1);
    for (const [lo, hi, seed] of [[1e25, 3e38, 1], [1e-35, 1e-25, 2], [1e-30, 3e38, 3]]) {
      const data = magnitudes(n, lo, hi, seed);
      await agree(family, 'rmsNorm', data, [rows, d], { normalizedShape: [d] });
      await agree(family, 'rmsNorm', data, [rows, d], { normalizedShape: [d], weight, eps: 0 });
    }
  });

  test('zeros, NaN and infinities keep the CPU pattern', async () => {
    const d = 8;
    const rows = [
      [0, 0, 0, 0, 0, 0, 0, 0],
      [1e30, NaN, 2, 3, 4, 5, 6, 7],
      [1e-30, 2e-30, Infinity, 1, 2, 3, 4, 5],
      [-Infinity, 3e38, 1, 2, 3, 4, 5, 6],
      [1e-30, -2e-30, 3e-30, 0, 0, 1e-31, 0, 5e-30],
    ];
    const data = f32(rows.flat());
    for (const eps of [undefined, 0]) {
      const y = (await agree(family, 'rmsNorm', data, [rows.length, d], { normalizedShape: [d], eps })).y;
      expect(Number.isNaN(y[9]) && Number.isNaN(y[18]) && y[19] === 0, 'NaN row and Inf row').toBe(true);
    }
  });
});

describe.each(FAMILIES)('variance beyond float32 squares (%s kernels)', (family) => {
  test('layerNorm of [1e20, 2e20, 3e20, 1e20] and [-3e30, 3e30]', async () => {
    await agree(family, 'layerNorm', f32([1e20, 2e20, 3e20, 1e20]), [1, 4], { normalizedShape: [4] });
    const y = (await agree(family, 'layerNorm', f32([-3e30, 3e30]), [1, 2], { normalizedShape: [2] })).y;
    expect(y[0]).toBeCloseTo(-1, 6);
    expect(y[1]).toBeCloseTo(1, 6);
  });

  test('inputs up to ±3e38 whose range exceeds float32', async () => {
    await agree(family, 'layerNorm', f32([-3e38, 3e38, 3e38, 3e38]), [1, 4], { normalizedShape: [4] });
    await agree(family, 'layerNorm', f32([-3e38, 3e38, 3e38, 3e38, 1]), [1, 5], { normalizedShape: [5] });
    await agree(family, 'moments', f32([-3e38, 3e38, 3e38, 3e38, -3e38, 1e38]), [6], { axes: [0] });
  });

  const ops: [OpName, number[], Options][] = [
    ['layerNorm', [3, 8], { normalizedShape: [8] }],
    ['layerNorm', [3, 7], { normalizedShape: [7] }],
    ['layerNorm', [2, 9000], { normalizedShape: [9000] }],
    ['groupNorm', [2, 6, 4, 4], { numGroups: 3 }],
    ['groupNorm', [2, 5, 3, 6], { numGroups: 3, layout: 'channels-last' }],
    ['instanceNorm', [2, 3, 5, 5], {}],
    ['batchNorm', [4, 3, 4, 4], { training: true }],
    ['batchNorm', [3, 5, 5, 3], { training: true, layout: 'channels-last' }],
    ['batchNorm', [300, 3], { training: true }],
    ['moments', [4, 3, 4, 4], { axes: [0, 2, 3] }],
    ['moments', [50, 60], { axes: [0], correction: 0 }],
    ['moments', [3, 2500], { axes: [1] }],
  ];
  test.each(ops)('%s %j %j', async (op, shape, opts) => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const [lo, hi, seed] of [[1e19, 1e38, 1], [1e-3, 1e38, 2]]) {
      await agree(family, op, magnitudes(n, lo, hi, seed, op === 'moments'), shape, opts);
    }
    await agree(family, op, normal(n, 1e25, 3, 1e30), shape, opts);
    // Partials stay finite, their merge overflows.
    await agree(family, op, normal(n, 3e18, 9, 1e20), shape, opts);
    // Squares underflow: keep full relative precision of the deviations.
    await agree(family, op, normal(n, 1e-30, 4), shape, opts);
    await agree(family, op, normal(n, 1e-30, 5, 1e-28), shape, opts);
  });

  test('spreads of 1e-30 with eps 0 are normalized exactly', async () => {
    for (const [shape, opts] of [[[3, 8], { normalizedShape: [8] }], [[3, 7], { normalizedShape: [7] }], [[2, 9000], { normalizedShape: [9000] }]] as const) {
      const n = shape[0] * shape[1];
      const y = (await agree(family, 'layerNorm', normal(n, 1e-30, 6), [...shape], { ...opts, eps: 0 })).y;
      expect(Math.max(...Array.from(y, Math.abs)), 'normalized to unit variance').toBeGreaterThan(1);
    }
    const bn = normal(4 * 3 * 16, 1e-30, 7, 1e-29);
    await agree(family, 'batchNorm', bn, [4, 3, 4, 4], { training: true, eps: 0 });
    await agree(family, 'batchNorm', bn, [4, 4, 4, 3], { training: true, eps: 0, layout: 'channels-last' });
  });

  test('running statistics from statistics whose M2 overflows float32', async () => {
    // Deviations of 3e18: M2 over the 64 values of a channel near 6e38, the variance 9e36 finite.
    for (const [shape, layout] of [[[4, 3, 4, 4], 'channels-first'], [[4, 4, 4, 3], 'channels-last'], [[1, 3, 64], 'channels-first']] as const) {
      const data = normal(192, 3e18, 8, 1e20);
      const out: Record<string, number[]>[] = [];
      for (const engine of [gpus[family], cpu]) {
        const x = engine.tensor(data, [...shape], { layout });
        const runningMean = engine.tensor(f32([1, 2, 3]), [3]);
        const runningVar = engine.tensor(f32([1, 1, 1]), [3]);
        const y = engine.batchNorm(x, { training: true, momentum: 0.5, runningMean, runningVar });
        out.push({ y: Array.from(await y.read()), mean: Array.from(await runningMean.read()), var: Array.from(await runningVar.read()) });
        for (const t of [x, runningMean, runningVar, y]) t.dispose();
      }
      for (const k of ['y', 'mean', 'var']) {
        expect(scaledError(out[0][k], out[1][k]), `${k} [${shape}] ${layout}: ${worstElement(out[0][k], out[1][k])}`).toBeLessThanOrEqual(TOL);
      }
    }
  });

  test('NaN and infinities among huge values keep the CPU pattern', async () => {
    const rows = [
      [1e30, NaN, 2, 3e38, 4, 5, 6, 7],
      [1e-30, 2e-30, Infinity, 1, 2, 3, 4, 5],
      [-Infinity, Infinity, 1, 2, 3, 4, 5, 6],
      [-3e38, 3e38, 1e38, 2e38, 3, 4, 5, 6],
    ];
    await agree(family, 'layerNorm', f32(rows.flat()), [4, 8], { normalizedShape: [8] });
    await agree(family, 'layerNorm', f32(rows.flat()), [4, 2, 4], { normalizedShape: [2, 4] });
    await agree(family, 'moments', f32(rows.flat()), [4, 8], { axes: [1] });
    await agree(family, 'moments', f32(rows.flat()), [4, 8], { axes: [0] });
  });
});

describe('dispatch sizes stay within maxComputeWorkgroupsPerDimension', () => {
  const MAX = 65535;
  const traits = (prefer: AdapterTraits['prefer'], software: boolean, subgroups = true): AdapterTraits =>
    ({ software, subgroups, maxWorkgroupsPerDim: MAX, prefer });
  const adapters = [
    traits('auto', false), traits('auto', true), traits('parallel', true), traits('serial', false), traits('auto', false, false),
  ];
  // Extreme views within u32 indexing: q·s = 2^28, o = 2^20, p = 2^26 and their neighbours.
  const specs: [string, NormSpec][] = [
    ['batchNorm [2, 2^27] (q·s = 2^28)', batchNormSpec([2, 2 ** 27], 'channels-first', { training: true })],
    ['batchNorm [4, 2^26]', batchNormSpec([4, 2 ** 26], 'channels-first', { training: true })],
    ['batchNorm NHWC [1, 2^13, 2^13, 4]', batchNormSpec([1, 2 ** 13, 2 ** 13, 4], 'channels-last', { training: true })],
    ['moments [2, 2^27] axes [0]', momentsSpec([2, 2 ** 27], { axes: [0] })],
    ['moments [2^26, 4] axes [0] (p = 2^26)', momentsSpec([2 ** 26, 4], { axes: [0] })],
    ['moments [2^20, 64, 4] axes [1] (o = 2^20)', momentsSpec([2 ** 20, 64, 4], { axes: [1] })],
    ['moments [2^20, 2, 2^6] axes [1] (o = 2^20, columns)', momentsSpec([2 ** 20, 2, 64], { axes: [1] })],
    ['moments [2^28] axes [0]', momentsSpec([2 ** 28], { axes: [0] })],
    ['layerNorm [2^26, 4]', layerNormSpec([2 ** 26, 4], { normalizedShape: [4] })],
    ['layerNorm [2^20, 256]', layerNormSpec([2 ** 20, 256], { normalizedShape: [256] })],
    ['layerNorm [1, 2^28]', layerNormSpec([1, 2 ** 28], { normalizedShape: [2 ** 28] })],
    ['rmsNorm [2^26, 3]', rmsNormSpec([2 ** 26, 3], { normalizedShape: [3] })],
    ['instanceNorm [2^10, 2^10, 16, 16]', instanceNormSpec([2 ** 10, 2 ** 10, 16, 16], 'channels-first', {})],
    ['instanceNorm NHWC [2^12, 8, 8, 2^10]', instanceNormSpec([2 ** 12, 8, 8, 2 ** 10], 'channels-last', {})],
    ['groupNorm NHWC [2^10, 2^10, 2^4, 16]', groupNormSpec([2 ** 10, 2 ** 10, 16, 16], 'channels-last', { numGroups: 4 })],
    ['groupNorm [2^16, 2^6, 8, 8]', groupNormSpec([2 ** 16, 64, 8, 8], 'channels-first', { numGroups: 32 })],
  ];
  test.each(specs)('%s', (_, spec) => {
    for (const a of adapters) {
      const plan = planGpu(spec, a);
      const grids = [plan.fused?.workgroups, plan.reduce?.workgroups, plan.finalize?.workgroups, plan.apply?.workgroups]
        .filter((w): w is [number, number, number] => !!w);
      for (const w of grids) {
        expect(Math.max(...w), `${JSON.stringify(a)}: ${JSON.stringify(plan)}`).toBeLessThanOrEqual(MAX);
        expect(Math.min(...w), `${JSON.stringify(a)}: ${JSON.stringify(plan)}`).toBeGreaterThanOrEqual(1);
      }
    }
  });
  test.each([[2 ** 28, 1], [1, 2 ** 28], [2 ** 14, 2 ** 14], [2 ** 20, 2 ** 8], [3, 2 ** 26]])('column stats [%i, %i]', (rows, width) => {
    for (const a of adapters) {
      const plan = planColumnStats(rows, width, a, [width / 4 >= 1 ? 4 : 1, 1, Math.max(1, width / 4)]);
      for (const w of [plan.reduce.workgroups, plan.columnMerge?.workgroups, plan.groupMerge?.workgroups].filter((g) => !!g)) {
        expect(Math.max(...w!), JSON.stringify(plan)).toBeLessThanOrEqual(MAX);
      }
    }
  });
});

describe('more column tiles than one dispatch dimension holds', () => {
  // [2, C] as [N, C]: C channels of 2 values, ceil(C / 64) column tiles on `parallel`.
  const wide = async (engine: Engine, shape: number[]) => {
    const data = normal(shape[0] * shape[1], 1, 11, 3);
    const probe = engine.tensor(data, shape);
    const tiles = engine.explain('moments', probe, { axes: [0] }).kernels[0].workgroups[0];
    probe.dispose();
    const { y } = await agree('parallel', 'batchNorm', data, shape, { training: true }, engine);
    expect(Math.abs(y[shape[1] - 1]), 'last channel normalized').toBeGreaterThan(0.5);
    const m = await agree('parallel', 'moments', data, shape, { axes: [0] }, engine);
    expect(m.variance[shape[1] - 1], 'last channel').toBeGreaterThan(0);
    return tiles;
  };

  test('[2, 100000] on a device reporting 1024 workgroups per dimension', async () => {
    Object.assign(globalThis, globals);
    // Dawn's GPU object must stay reachable for the life of the process.
    const dawn = ((globalThis as Record<string, unknown>).__normgpuTestDawn ??= create([])) as GPU;
    const device = await (await dawn.requestAdapter())!.requestDevice({ label: 'capped-dispatch' });
    // An own `limits` shadows the prototype's getter: the planner sees the lower cap.
    const limits: Record<string, number> = {};
    for (const k in device.limits) limits[k] = (device.limits as unknown as Record<string, number>)[k];
    Object.defineProperty(device, 'limits', { value: { ...limits, maxComputeWorkgroupsPerDimension: 1024 } });
    const engine = await createEngine({ device, kernels: 'parallel' });
    try {
      expect(await wide(engine, [2, 100_000])).toBe(1024);
    } finally {
      engine.dispose();
      device.destroy();
    }
  }, 300_000);

  // The same at the real limit takes about 5 minutes on SwiftShader: `npm run test:limits`
  // runs it; CI relies on the capped device above, which takes the same code path.
  if (process.env.LIMITS_FULL) {
    test('[2, 4200000] (65625 tiles)', async () => {
      expect(await wide(gpus.parallel, [2, 4_200_000])).toBe(65535);
    }, 900_000);
  }
});

describe.each(FAMILIES)('BatchNorm training with one sample updates running statistics (%s kernels)', (family) => {
  test('[1, 2, 4], momentum 0.5', async () => {
    for (const engine of [gpus[family], cpu]) {
      const x = engine.tensor(f32([1, 2, 3, 4, 10, 20, 30, 40]), [1, 2, 4]);
      const runningMean = engine.tensor(f32([0, 0]), [2]);
      const runningVar = engine.tensor(f32([1, 1]), [2]);
      const y = engine.batchNorm(x, { training: true, momentum: 0.5, runningMean, runningVar });
      await y.read();
      const rm = Array.from(await runningMean.read());
      const rv = Array.from(await runningVar.read());
      expect(rm[0], engine.backend).toBeCloseTo(1.25, 5);
      expect(rm[1], engine.backend).toBeCloseTo(12.5, 4);
      expect(rv[0], engine.backend).toBeCloseTo(0.5 + 0.5 * (5 / 3), 5);
      expect(rv[1], engine.backend).toBeCloseTo(0.5 + 0.5 * (500 / 3), 3);
      for (const t of [x, runningMean, runningVar, y]) t.dispose();
    }
  });
});
