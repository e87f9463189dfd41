/**
 * The CPU backend's backward (the float64 reference of the GPU stages) against central finite
 * differences of its own forward, for every op and layout, with and without an affine, on small
 * random shapes: dx, dweight and dbias of L = Σ y * dy. Also the GPU plan's dispatch sizes.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEngine, type Engine } from '../src/index';
import { gradSpec, planGrad } from '../src/plan/grad';
import { batchNormSpec, groupNormSpec, instanceNormSpec, layerNormSpec, type NormSpec } from '../src/plan/spec';

let engine: Engine;
beforeAll(async () => { engine = await createEngine({ backend: 'cpu' }); });
afterAll(() => engine.dispose());

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

type Op = 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';
const CASES: { op: Op; layout: 'channels-first' | 'channels-last'; options: (shape: number[]) => Record<string, unknown>; channels: (s: number[]) => number }[] = [
  { op: 'batchNorm', layout: 'channels-first', options: () => ({ training: true }), channels: (s) => s[1] },
  { op: 'batchNorm', layout: 'channels-last', options: () => ({ training: true }), channels: (s) => s.at(-1)! },
  { op: 'batchNorm', layout: 'channels-first', options: (s) => ({ training: false, runningMean: Array(s[1]).fill(0.3), runningVar: Array(s[1]).fill(0.7) }), channels: (s) => s[1] },
  { op: 'instanceNorm', layout: 'channels-first', options: () => ({}), channels: (s) => s[1] },
  { op: 'instanceNorm', layout: 'channels-last', options: () => ({}), channels: (s) => s.at(-1)! },
  { op: 'groupNorm', layout: 'channels-first', options: (s) => ({ numGroups: s[1] / 2 }), channels: (s) => s[1] },
  { op: 'groupNorm', layout: 'channels-last', options: (s) => ({ numGroups: s.at(-1)! / 2 }), channels: (s) => s.at(-1)! },
  { op: 'layerNorm', layout: 'channels-first', options: (s) => ({ normalizedShape: s.slice(2) }), channels: (s) => s[2] * s[3] },
  { op: 'rmsNorm', layout: 'channels-first', options: (s) => ({ normalizedShape: [s[3]] }), channels: (s) => s[3] },
];

test.each(CASES.flatMap((c) => [true, false].map((affine) => ({ ...c, affine, name: `${c.op} ${c.layout}${c.op === 'batchNorm' ? ` ${c.options([1, 1])?.training ? 'train' : 'eval'}` : ''} affine=${affine}` }))))(
  '$name: dx, dweight, dbias match finite differences of the forward',
  async (c) => {
    const r = rng(c.name.length * 7 + (c.affine ? 1 : 0));
    const shape = c.layout === 'channels-first' ? [2, 4, 3, 2 + Math.floor((r() + 0.5) * 3)] : [2, 3, 2 + Math.floor((r() + 0.5) * 3), 4];
    const n = shape.reduce((a, b) => a * b, 1);
    const k = c.channels(shape);
    const x0 = Float64Array.from({ length: n }, () => 2 * r());
    const dy0 = Float32Array.from({ length: n }, () => 2 * r());
    const weight = Float64Array.from({ length: k }, () => 1 + r());
    const bias = Float64Array.from({ length: k }, () => r());
    const base = c.options(shape);
    const withAffine = (w: Float64Array, b: Float64Array) => (c.affine ? { ...base, weight: w, ...(c.op === 'rmsNorm' ? {} : { bias: b }) } : base);
    const loss = async (x: Float64Array, w: Float64Array, b: Float64Array): Promise<number> => {
      const xt = engine.tensor(x, shape, { layout: c.layout });
      const y = await engine.normForward(c.op, xt, withAffine(w, b) as never).y.read();
      xt.dispose();
      return y.reduce((s, v, i) => s + v * dy0[i], 0);
    };
    const x = engine.tensor(x0, shape, { layout: c.layout });
    const dy = engine.tensor(dy0, shape, { layout: c.layout });
    const g = engine.normBackward(c.op, dy, x, { ...withAffine(weight, bias), outputMask: { input: true, weight: true, bias: c.op !== 'rmsNorm' } } as never);
    const h = 1e-2;
    const fd = async (v: Float64Array, i: number, f: () => Promise<number>) => {
      const keep = v[i];
      v[i] = keep + h;
      const up = await f();
      v[i] = keep - h;
      const down = await f();
      v[i] = keep;
      return (up - down) / (2 * h);
    };
    const check = async (name: string, analytic: Float32Array, v: Float64Array) => {
      for (let i = 0; i < v.length; i++) {
        const num = await fd(v, i, () => loss(x0, weight, bias));
        expect(Math.abs(analytic[i] - num) / (1 + Math.abs(num)), `${name}[${i}]: ${analytic[i]} vs ${num}`).toBeLessThan(2e-3);
      }
    };
    await check('dx', await g.dx!.read(), x0);
    // Without an affine the forward does not depend on weight and bias: dx only.
    if (!c.affine) return;
    await check('dweight', await g.dweight!.read(), weight);
    if (g.dbias) await check('dbias', await g.dbias.read(), bias);
  },
);

// Dispatch sizes: every stage of both families fits a small maxComputeWorkgroupsPerDimension,
// however many blocks, tiles or groups the view has (channels-last stage 1 folds its grid).
test.each(['serial', 'parallel'] as const)('%s plan: no dispatch dimension above the limit', (prefer) => {
  const maxDim = 64;
  const views: [string, NormSpec][] = [
    ['IN NHWC, 3000 samples', instanceNormSpec([3000, 3, 1, 4], 'channels-last', {})],
    ['GN NHWC, 9000 columns', groupNormSpec([3, 2, 2, 9000], 'channels-last', { numGroups: 3 })],
    ['BN NHWC, many rows', batchNormSpec([7, 300, 300, 3], 'channels-last', { training: true })],
    ['BN NCHW, many planes', batchNormSpec([9000, 2, 3], 'channels-first', { training: true })],
    ['LN, 10000 rows of 300', layerNormSpec([10000, 300], { normalizedShape: [300] })],
  ];
  for (const [name, norm] of views) {
    const plan = planGrad(gradSpec(norm, { weight: [] }, { weight: true, bias: true }), { maxWorkgroupsPerDim: maxDim, software: true, prefer });
    const dims = [plan.fused, plan.groupCells, plan.groups, plan.paramCells, plan.params, plan.apply].flatMap((p) => (p ? p.workgroups : []));
    expect(dims.length, name).toBeGreaterThan(0);
    expect(Math.max(...dims), name).toBeLessThanOrEqual(maxDim);
  }
});
