/**
 * The float64 CPU reference pinned by hand: tiny inputs whose results follow from the
 * PyTorch definitions in closed form (and, where the arithmetic is exact, as literals), so the
 * reference every GPU kernel is compared with is itself anchored without goldens.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, FLOAT32_EPS, type Engine, type Layout } from '../src/index';

let cpu: Engine;
beforeAll(async () => {
  cpu = await createEngine({ backend: 'cpu' });
});
afterAll(() => cpu.dispose());

const f32 = (values: number[]) => Float32Array.from(values);
/** Round each closed-form value once to float32, as the engine does. */
const rounded = (values: number[]) => Float32Array.from(values.map(Math.fround));

/**
 * Equal to the closed form up to one float32 ulp: the reference's float64 evaluation order
 * may differ from the formula's, which can flip the last bit of the float32 rounding.
 */
function expectUlp(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (Number.isNaN(e)) return expect(a, `[${i}]`).toBeNaN();
    expect(Math.abs(a - e), `[${i}]: got ${a}, expected ${e}`).toBeLessThanOrEqual(Math.abs(e) * 2 ** -23 + 1e-30);
  });
}

async function run(fn: (e: Engine) => { read(): Promise<Float32Array> }): Promise<Float32Array> {
  return fn(cpu).read();
}

describe('LayerNorm', () => {
  test('[1, 2, 3, 4]: mean 2.5, biased variance 1.25, eps 1e-5 by default', async () => {
    const y = await run((e) => e.layerNorm(e.tensor([1, 2, 3, 4], [1, 4]), { normalizedShape: 4 }));
    const r = 1 / Math.sqrt(1.25 + 1e-5);
    expectUlp(y, rounded([-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r]));
    // Hand-evaluated: 1.5 / sqrt(1.25001) = 1.3416354..., 0.5 / sqrt(1.25001) = 0.4472118...
    expect(y[0]).toBeCloseTo(-1.3416354, 6);
    expect(y[1]).toBeCloseTo(-0.4472118, 6);
  });

  test('eps 0 gives the exact standard score; weight and bias apply per element', async () => {
    const y0 = await run((e) => e.layerNorm(e.tensor([1, 2, 3, 4], [4]), { normalizedShape: [4], eps: 0 }));
    const s = 1 / Math.sqrt(1.25); // 0.894427...
    expectUlp(y0, rounded([-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s]));
    const y = await run((e) => e.layerNorm(e.tensor([1, 2, 3, 4], [1, 4]), {
      normalizedShape: [4], eps: 0, weight: [1, 2, 3, 4], bias: [0.5, 0, -0.5, 1],
    }));
    expectUlp(y, rounded([-1.5 * s + 0.5, -0.5 * s * 2, 0.5 * s * 3 - 0.5, 1.5 * s * 4 + 1]));
  });

  test('over two trailing dims: each row of 4 normalized on its own', async () => {
    const y = await run((e) => e.layerNorm(e.tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), { normalizedShape: [2, 2], eps: 0 }));
    const s = 1 / Math.sqrt(1.25);
    const row = [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s];
    expectUlp(y, rounded([...row, ...row]));
  });

  test('over a size-1 dim: x - mean is exactly 0, so the output is the bias', async () => {
    const y = await run((e) => e.layerNorm(e.tensor([3, -7, 1e4], [3, 1]), { normalizedShape: [1], bias: [0.25] }));
    expect(y).toEqual(f32([0.25, 0.25, 0.25]));
  });

  test('eps 0 on a constant row is 0 * inf = NaN, as in PyTorch', async () => {
    const y = await run((e) => e.layerNorm(e.tensor([2, 2, 2], [1, 3]), { normalizedShape: 3, eps: 0 }));
    expect(Array.from(y).every(Number.isNaN)).toBe(true);
  });
});

describe('BatchNorm inference', () => {
  // y = (x - runningMean[c]) / sqrt(runningVar[c] + eps) * weight[c] + bias[c]; with eps 0 and
  // variances 4 and 0.25 every step is exact: [[1, 4], [3, -2]] -> [[0.5, -11], [2.5, 1]].
  const stats = { runningMean: [1, -2], runningVar: [4, 0.25], weight: [2, -1], bias: [0.5, 1], eps: 0 };

  test('[N, C] by the formula, exactly', async () => {
    const y = await run((e) => e.batchNorm(e.tensor([1, 4, 3, -2], [2, 2]), stats));
    expect(y).toEqual(f32([0.5, -11, 2.5, 1]));
  });

  test('channels-first [N, C, L] and channels-last [N, L, C] agree with it', async () => {
    // Channel 0 holds 1 and 3, channel 1 holds 4 and -2, in either layout.
    const first = await run((e) => e.batchNorm(e.tensor([1, 3, 4, -2], [1, 2, 2]), stats));
    expect(first).toEqual(f32([0.5, 2.5, -11, 1]));
    const last = await run((e) => e.batchNorm(e.tensor([1, 4, 3, -2], [1, 2, 2], { layout: 'channels-last' }), stats));
    expect(last).toEqual(f32([0.5, -11, 2.5, 1]));
  });

  test('default eps 1e-5, no affine; host running stats are not modified', async () => {
    const runningMean = f32([1, -2]);
    const runningVar = f32([4, 0.25]);
    const y = await run((e) => e.batchNorm(e.tensor([1, 4, 3, -2], [2, 2]), { runningMean, runningVar }));
    expectUlp(y, rounded([0, 6 / Math.sqrt(0.25 + 1e-5), 2 / Math.sqrt(4 + 1e-5), 0]));
    expect(runningMean).toEqual(f32([1, -2]));
    expect(runningVar).toEqual(f32([4, 0.25]));
  });
});

describe('BatchNorm training', () => {
  // [N=2, C=2, L=2]: channel 0 holds 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3);
  // channel 1 holds 10, 10, 10, 14 (mean 11, biased var 3, unbiased 4).
  const nchw = [1, 2, 10, 10, 3, 4, 10, 14];
  const nlc = [1, 10, 2, 10, 3, 10, 4, 14];
  const normalized = (eps: number) => {
    const a = 1 / Math.sqrt(1.25 + eps);
    const b = 1 / Math.sqrt(3 + eps);
    return { c0: [1, 2, 3, 4].map((v) => (v - 2.5) * a), c1: [10, 10, 10, 14].map((v) => (v - 11) * b) };
  };

  test.each<[string, Layout, number[]]>([
    ['channels-first', 'channels-first', nchw],
    ['channels-last', 'channels-last', nlc],
  ])('batch statistics and the running update with momentum 0.1 and the unbiased variance (%s)', async (_n, layout, data) => {
    const rm = cpu.tensor([0, 1], [2]);
    const rv = cpu.tensor([1, 2], [2]);
    const y = await cpu.batchNorm(cpu.tensor(data, [2, 2, 2], { layout }), { training: true, runningMean: rm, runningVar: rv }).read();
    const { c0, c1 } = normalized(1e-5);
    const expected = layout === 'channels-first'
      ? [c0[0], c0[1], c1[0], c1[1], c0[2], c0[3], c1[2], c1[3]]
      : [c0[0], c1[0], c0[1], c1[1], c0[2], c1[2], c0[3], c1[3]];
    expectUlp(y, rounded(expected));
    // runningMean = 0.9 * [0, 1] + 0.1 * [2.5, 11] = [0.25, 2];
    // runningVar = 0.9 * [1, 2] + 0.1 * [5/3, 4] = [1.0666667, 2.2].
    expectUlp(await rm.read(), rounded([0.25, 2]));
    expectUlp(await rv.read(), rounded([0.9 + 0.1 * (5 / 3), 1.8 + 0.4]));
    expect((await rv.read())[0]).toBeCloseTo(1.0666667, 6);

    // A second call updates the updated statistics again.
    cpu.batchNorm(cpu.tensor(data, [2, 2, 2], { layout }), { training: true, runningMean: rm, runningVar: rv, momentum: 0.1 });
    expectUlp(await rm.read(), rounded([0.9 * Math.fround(0.25) + 0.25, 0.9 * 2 + 1.1]));
  });

  test('momentum 0 keeps the running statistics, momentum 1 replaces them by the batch ones', async () => {
    const x = cpu.tensor(nchw, [2, 2, 2]);
    const rm = cpu.tensor([0, 1], [2]);
    const rv = cpu.tensor([1, 2], [2]);
    cpu.batchNorm(x, { training: true, runningMean: rm, runningVar: rv, momentum: 0 });
    expect(await rm.read()).toEqual(f32([0, 1]));
    expect(await rv.read()).toEqual(f32([1, 2]));
    cpu.batchNorm(x, { training: true, runningMean: rm, runningVar: rv, momentum: 1 });
    expect(await rm.read()).toEqual(f32([2.5, 11]));
    expectUlp(await rv.read(), rounded([5 / 3, 4]));
  });

  test('weight and bias, and training without running statistics', async () => {
    const y = await run((e) => e.batchNorm(e.tensor(nchw, [2, 2, 2]), { training: true, weight: [2, -1], bias: [0, 5], eps: 0 }));
    const { c0, c1 } = normalized(0);
    expectUlp(y, rounded([2 * c0[0], 2 * c0[1], 5 - c1[0], 5 - c1[1], 2 * c0[2], 2 * c0[3], 5 - c1[2], 5 - c1[3]]));
  });
});

describe('RMSNorm', () => {
  test('default eps is float32 machine epsilon 1.1920929e-7, as torch.finfo(torch.float32).eps', async () => {
    expect(FLOAT32_EPS).toBe(1.1920928955078125e-7);
    // With x = ±1e-4, mean(x²) = 1e-8 is of the order of eps, so the result pins eps itself:
    // 1e-4 / sqrt(1e-8 + 1.1920929e-7) = 0.27820... (eps 1e-5 would give 0.0316, eps 1e-6 0.0995).
    const x = Math.fround(1e-4);
    const y = await run((e) => e.rmsNorm(e.tensor([x, -x], [1, 2]), { normalizedShape: 2 }));
    const r = 1 / Math.sqrt(x * x + FLOAT32_EPS);
    expectUlp(y, rounded([x * r, -x * r]));
    expect(y[0]).toBeCloseTo(0.278199, 5);
  });

  test('[3, 4]: x / sqrt(12.5 + eps) * weight, no mean subtraction, no bias', async () => {
    const y = await run((e) => e.rmsNorm(e.tensor([3, 4, 0, 2], [2, 2]), { normalizedShape: [2], weight: [2, 0.5], eps: 0 }));
    const r1 = 1 / Math.sqrt(12.5);
    const r2 = 1 / Math.sqrt(2);
    expectUlp(y, rounded([3 * r1 * 2, 4 * r1 * 0.5, 0, 2 * r2 * 0.5]));
  });

  test('a row holding an infinity: NaN there (inf * 0), 0 elsewhere', async () => {
    const y = await run((e) => e.rmsNorm(e.tensor([1, Infinity, -2, 1, 2, 3], [2, 3]), { normalizedShape: 3 }));
    expect(Number.isNaN(y[1])).toBe(true);
    expect(Math.abs(y[0])).toBe(0);
    expect(Math.abs(y[2])).toBe(0);
    expect(Array.from(y.slice(3)).every(Number.isFinite)).toBe(true);
  });
});

describe('InstanceNorm and GroupNorm', () => {
  const r = 1 / Math.sqrt(1 + 1e-5); // a pair {a, a + 2} has biased variance 1

  test('instanceNorm [1, 2, 2]: each channel of each sample on its own', async () => {
    const y = await run((e) => e.instanceNorm(e.tensor([1, 3, 5, 5], [1, 2, 2])));
    expectUlp(y, rounded([-r, r, 0, 0]));
  });

  test('instanceNorm channels-last [1, 2, 2] with weight and bias', async () => {
    // [N, L, C]: channel 0 holds 1, 3; channel 1 holds 5, 5.
    const y = await run((e) => e.instanceNorm(e.tensor([1, 5, 3, 5], [1, 2, 2], { layout: 'channels-last' }), { weight: [3, 3], bias: [0, 7] }));
    expectUlp(y, rounded([-3 * r, 7, 3 * r, 7]));
  });

  test('groupNorm [1, 4, 1], 2 groups of 2 channels, per-channel weight and bias', async () => {
    const y = await run((e) => e.groupNorm(e.tensor([1, 3, 2, 2], [1, 4, 1]), { numGroups: 2, weight: [1, 2, 3, 4], bias: [0, 0, 1, 1] }));
    expectUlp(y, rounded([-r, 2 * r, 1, 1]));
  });

  test('groupNorm channels-last [1, 2, 4]: a group spans its channels at every position', async () => {
    // [N, L, C] = [[1, 10, 0, 0], [3, 10, 4, 8]]: group 0 = channels 0, 1 = {1, 10, 3, 10}
    // (mean 6, biased variance 16.5), group 1 = channels 2, 3 = {0, 0, 4, 8} (mean 3, variance 11).
    const y = await run((e) => e.groupNorm(e.tensor([1, 10, 0, 0, 3, 10, 4, 8], [1, 2, 4], { layout: 'channels-last' }), { numGroups: 2, eps: 0 }));
    const a = 1 / Math.sqrt(16.5);
    const b = 1 / Math.sqrt(11);
    expectUlp(y, rounded([-5 * a, 4 * a, -3 * b, -3 * b, -3 * a, 4 * a, 1 * b, 5 * b]));
  });

  test('groupNorm with one channel per group and spatial 1: the output is the bias', async () => {
    const y = await run((e) => e.groupNorm(e.tensor([4, -1, 2.5, 9], [2, 2, 1, 1]), { numGroups: 2, bias: [0.5, -0.5] }));
    expect(y).toEqual(f32([0.5, -0.5, 0.5, -0.5]));
  });
});

describe('moments', () => {
  const x = () => cpu.tensor([1, 2, 3, 4], [2, 2]);

  test.each([
    [[0], 1, [2, 3], [2, 2]],
    [[0], 0, [2, 3], [1, 1]],
    [[-1], 1, [1.5, 3.5], [0.5, 0.5]],
    [[-1], 0, [1.5, 3.5], [0.25, 0.25]],
    [[0, 1], 1, [2.5], [5 / 3]],
    [[1, 0], 0, [2.5], [1.25]],
  ])('[[1, 2], [3, 4]] axes %j correction %i', async (axes, correction, mean, variance) => {
    const m = cpu.moments(x(), { axes, correction });
    expectUlp(await m.mean.read(), rounded(mean));
    expectUlp(await m.variance.read(), rounded(variance));
    expect(m.mean.shape).toEqual(mean.length === 1 && axes.length === 2 ? [1] : [2]);
  });

  test('correction defaults to 1 (unbiased, as torch.var_mean)', async () => {
    expect(await cpu.moments(x(), { axes: [0] }).variance.read()).toEqual(f32([2, 2]));
  });

  test('the reduced axes are removed from the shape', () => {
    const t = cpu.tensor(new Float32Array(24), [2, 3, 4]);
    expect(cpu.moments(t, { axes: [1] }).mean.shape).toEqual([2, 4]);
    expect(cpu.moments(t, { axes: [0, 2] }).variance.shape).toEqual([3]);
    expect(cpu.moments(t, { axes: [2] }).mean.shape).toEqual([2, 3]);
  });

  test('one element and correction 1 leaves no degrees of freedom: NaN variance', async () => {
    const m = cpu.moments(cpu.tensor([5, 7], [2, 1]), { axes: [1], correction: 1 });
    expect(await m.mean.read()).toEqual(f32([5, 7]));
    expect(Array.from(await m.variance.read()).every(Number.isNaN)).toBe(true);
  });

  test('an infinity makes the mean that infinity and the variance NaN', async () => {
    const m = cpu.moments(cpu.tensor([1, Infinity, 2, 3], [2, 2]), { axes: [-1], correction: 0 });
    expect(await m.mean.read()).toEqual(f32([Infinity, 2.5]));
    const v = await m.variance.read();
    expect(Number.isNaN(v[0])).toBe(true);
    expect(v[1]).toBe(0.25);
  });
});

describe('CPU tensors', () => {
  test('tensor() copies its data and read() returns a copy', async () => {
    const data = f32([1, 2, 3]);
    const t = cpu.tensor(data, [3]);
    data[0] = 100;
    const out = await t.read();
    expect(out).toEqual(f32([1, 2, 3]));
    out[1] = 100;
    expect(await t.read()).toEqual(f32([1, 2, 3]));
  });

  test('number[] data is rounded to float32', async () => {
    expect(await cpu.tensor([0.1], [1]).read()).toEqual(f32([Math.fround(0.1)]));
  });
});
