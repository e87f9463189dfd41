/**
 * Feature scalers: golden `standard_scaler` cases (scikit-learn), GPU against the float64 CPU
 * twin and a float64 reference, partialFit against fit, inverse transforms, options and typed
 * errors. GPU work runs inside validation error scopes; without an adapter the GPU tests fail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, MinMaxScaler, StandardScaler, type Engine, type Tensor } from '../src/index';
import { asyncErrorCode, errorCode, makeGpuEngine, maxRelative, mulberry32, normalSampler, scaledError, withValidation } from './support/gpu';
import type { WebGpuBackend } from '../src/gpu/backend';

const GOLDEN = join(__dirname, 'golden');
const f32 = (name: string) => {
  const b = readFileSync(join(GOLDEN, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
interface ScalerCase { id: string; shape: [number, number]; dist: string; input: string; mean: string; scale: string; output: string; minmax_output: string }
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as { cases: (ScalerCase & { op: string })[] };
const goldenCases = manifest.cases.filter((c) => c.op === 'standard_scaler');

/** Column statistics of [rows, features] data in float64, straight from the definitions. */
function reference(x: Float32Array, rows: number, features: number) {
  const mean = new Float64Array(features);
  const m2 = new Float64Array(features);
  const min = new Float64Array(features).fill(Infinity);
  const max = new Float64Array(features).fill(-Infinity);
  for (let i = 0; i < x.length; i++) {
    mean[i % features] += x[i] / rows;
    min[i % features] = Math.min(min[i % features], x[i]);
    max[i % features] = Math.max(max[i % features], x[i]);
  }
  for (let i = 0; i < x.length; i++) m2[i % features] += (x[i] - mean[i % features]) ** 2;
  const std = m2.map((v) => Math.sqrt(v / rows));
  return { mean, std, min, max };
}

function offsetData(rows: number, features: number, seed: number): Float32Array {
  const normal = normalSampler(mulberry32(seed));
  return Float32Array.from({ length: rows * features }, (_, i) => 1e4 + (i % features) + (1 + (i % features)) * normal());
}

let gpu: Engine;
let gpuOther: Engine;
let cpu: Engine;
beforeAll(async () => {
  gpu = await makeGpuEngine();
  // The other stage-1 family: reduce_stats_columns.wgsl where `gpu` takes reduce_stats_serial.wgsl.
  gpuOther = await makeGpuEngine({ kernels: gpu.adapterInfo?.software ? 'parallel' : 'serial' });
  cpu = await createEngine({ backend: 'cpu' });
});
afterAll(() => {
  gpu?.dispose();
  gpuOther?.dispose();
  cpu?.dispose();
});

const backends = () => [['cpu', cpu], ['webgpu', gpu]] as const;
/** The backends and both stage-1 kernel families of column statistics. */
const families = () => [...backends(), ['webgpu, other kernels', gpuOther]] as const;
const run = <T>(engine: Engine, fn: () => Promise<T> | T): Promise<T> => (engine.backend === 'webgpu' ? withValidation(engine, fn) : Promise.resolve(fn()));

describe('golden standard_scaler cases', () => {
  test('the manifest has scaler cases', () => expect(goldenCases.length).toBeGreaterThan(0));
  for (const c of goldenCases) {
    for (const name of ['cpu', 'webgpu'] as const) {
      test(`${c.id} on ${name}`, async () => {
        const engine = name === 'cpu' ? cpu : gpu;
        const x = engine.tensor(f32(c.input), c.shape);
        await run(engine, async () => {
          const standard = new StandardScaler(engine);
          const z = await standard.fitTransform(x);
          const minmax = new MinMaxScaler(engine, { featureRange: [-1, 1] });
          const m = await minmax.fitTransform(x);
          expect(scaledError(Float32Array.from(standard.mean!), f32(c.mean))).toBeLessThan(1e-6);
          expect(scaledError(Float32Array.from(standard.scale!), f32(c.scale))).toBeLessThan(1e-6);
          const zErr = scaledError(await z.read(), f32(c.output));
          const mErr = scaledError(await m.read(), f32(c.minmax_output));
          console.log(`[golden ${c.id} ${name}] standard ${zErr.toExponential(2)} minmax ${mErr.toExponential(2)}`);
          expect(zErr).toBeLessThan(1e-5);
          expect(mErr).toBeLessThan(1e-5);
          // Back to the input.
          const back = await standard.inverseTransform(z).read();
          expect(scaledError(back, f32(c.input))).toBeLessThan(1e-6);
          for (const t of [z, m]) t.dispose();
        });
        x.dispose();
      });
    }
  }
});

describe('GPU against float64', () => {
  test('fit at a 1e4 offset, long columns (tree merge): statistics to 1e-6 relative, transform to the twin', async () => {
    const rows = 9000;
    const features = 5;
    const data = offsetData(rows, features, 7);
    const ref = reference(data, rows, features);
    for (const [, engine] of backends()) {
      const x = engine.tensor(data, [rows, features]);
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(x);
        expect(maxRelative(s.mean!, ref.mean)).toBeLessThan(1e-9);
        expect(maxRelative(s.scale!, ref.std)).toBeLessThan(1e-6);
        const mm = await new MinMaxScaler(engine).fit(x);
        expect(Array.from(mm.dataMin!)).toEqual(Array.from(ref.min));
        expect(Array.from(mm.dataMax!)).toEqual(Array.from(ref.max));
      });
      x.dispose();
    }
    // Transforms of the two backends agree to float32 rounding.
    const outs: Float32Array[] = [];
    for (const [, engine] of backends()) {
      const x = engine.tensor(data, [rows, features]);
      outs.push(await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(x);
        return s.transform(x).read();
      }));
      x.dispose();
    }
    expect(scaledError(outs[1], outs[0])).toBeLessThan(2e-6);
  });

  test('partialFit over batches equals fit on all of them', async () => {
    const rows = 300;
    const features = 4;
    const data = offsetData(rows, features, 11);
    for (const [, engine] of backends()) {
      await run(engine, async () => {
        const whole = await new StandardScaler(engine).fit(engine.tensor(data, [rows, features]));
        const parts = new StandardScaler(engine);
        const mm = new MinMaxScaler(engine);
        for (const [a, b] of [[0, 70], [70, 71], [71, 300]]) {
          const t = engine.tensor(data.subarray(a * features, b * features), [b - a, features]);
          await parts.partialFit(t);
          await mm.partialFit(t);
          t.dispose();
        }
        expect(parts.nSamplesSeen).toBe(rows);
        expect(maxRelative(parts.mean!, whole.mean!)).toBeLessThan(1e-9);
        expect(maxRelative(parts.var!, whole.var!)).toBeLessThan(2e-6);
        const ref = reference(data, rows, features);
        expect(Array.from(mm.dataMin!)).toEqual(Array.from(ref.min));
        expect(Array.from(mm.dataMax!)).toEqual(Array.from(ref.max));
      });
    }
  });
});

describe('options', () => {
  test('withMean / withStd, constant features, featureRange and clip, as scikit-learn', async () => {
    const rows = [[1, 5, 2], [3, 5, -2], [5, 5, 0], [7, 5, 4]];
    for (const [, engine] of backends()) {
      await run(engine, async () => {
        const noMean = new StandardScaler(engine, { withMean: false });
        const z = await (await noMean.fitTransform(rows)).read();
        // x / std: mean of col 0 is 4, var 5; col 1 is constant: scale 1.
        expect(Array.from(noMean.scale!)).toEqual([Math.sqrt(5), 1, Math.sqrt(5)]);
        expect(z[0]).toBeCloseTo(1 / Math.sqrt(5), 6);
        expect(z[1]).toBe(5);
        const noStd = new StandardScaler(engine, { withStd: false });
        expect(Array.from(await (await noStd.fitTransform(rows)).read()).slice(0, 3)).toEqual([-3, 0, 1]);
        expect(noStd.scale).toBeNull();
        expect(noStd.var).toBeNull();
        const neither = new StandardScaler(engine, { withMean: false, withStd: false });
        await neither.fit(rows);
        expect(neither.mean).toBeNull();
        const mm = new MinMaxScaler(engine, { featureRange: [-1, 1], clip: true });
        await mm.fit(rows);
        expect(Array.from(await mm.transform([[0, 5, 8], [7, 5, 4]]).read())).toEqual([-1, -1, 1, 1, -1, 1]);
        // numpy's clip keeps NaN.
        expect(Array.from(await mm.transform([[NaN, 5, Infinity]]).read())).toEqual([NaN, -1, 1]);
        expect(Array.from(mm.scale!)).toEqual([2 / 6, 2, 2 / 6]);
        expect(Array.from(mm.min!)).toEqual([-1 - 1 * (2 / 6), -1 - 5 * 2, -1 + 2 * (2 / 6)]);
        const unclipped = new MinMaxScaler(engine);
        await unclipped.fit(rows);
        const y = await unclipped.transform([[8, 5, 6]]).read();
        expect(y[0]).toBeCloseTo(7 / 6, 6);
        expect(Array.from(await unclipped.inverseTransform(unclipped.transform([[8, 5, 6]])).read())).toEqual([8, 5, 6]);
      });
    }
  });
});

describe('edge values, as scikit-learn', () => {
  test('a tiny but non-constant spread keeps its scale (constant_mask, not scale < 10 eps)', async () => {
    for (const [, engine] of backends()) {
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit([[0], [1e-16]]);
        const expected = Math.fround(1e-16) / 2;
        expect(Math.abs(s.scale![0] - expected) / expected, engine.backend).toBeLessThan(1e-6);
      });
    }
  });

  test('+inf in a column makes its mean +inf and its variance NaN, however many row chunks merge', async () => {
    for (const rows of [10, 200, 5000]) {
      const data = Array.from({ length: rows }, (_, i) => [i === 3 || i === rows - 2 ? Infinity : 1, i]);
      for (const [, engine] of backends()) {
        await run(engine, async () => {
          const s = await new StandardScaler(engine).fit(data);
          expect([s.mean![0], s.var![0]], `${engine.backend}, ${rows} rows`).toEqual([Infinity, NaN]);
          expect(Math.abs(s.mean![1] - (rows - 1) / 2), `${engine.backend}, ${rows} rows`).toBeLessThan(1e-9 * rows);
        });
      }
    }
  });
});

describe('values whose squares overflow float32', () => {
  test('StandardScaler agrees with float64 at 1e20 and 3e38 (float32 partials overflow on the GPU)', async () => {
    const rows = [[1e20, 3e38], [-1e20, -3e38], [3e20, 1e38], [2e20, 0]];
    const want = [rows.reduce((a, r) => a + r[0], 0) / 4, rows.reduce((a, r) => a + r[1], 0) / 4];
    for (const [, engine] of families()) {
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(rows);
        for (let f = 0; f < 2; f++) {
          expect(Math.abs(s.mean![f] - want[f]) / Math.abs(want[f] || 1), `${engine.backend} mean ${f}`).toBeLessThan(1e-6);
          const v = rows.reduce((a, r) => a + (r[f] - want[f]) ** 2, 0) / 4;
          expect(Math.abs(s.var![f] - v) / v, `${engine.backend} var ${f}`).toBeLessThan(1e-6);
        }
      });
    }
  });

  test('rescued and plain chunk partials merge (GPU stage-1 chunks, merges and the host), NaN left out, to the float64 twin', async () => {
    // Feature 0: +1e20 in the first 2/3, then -1e20 (chunks of one sign finite, their merges overflow); 1: 3e38 in
    // a few rows of 1e4 + N(0, 1) (those chunks rescued, the others plain); 2: 1e-15 + 1e-17 N(0, 1)
    // with NaN in row 0 and every 5th row; 3: constant 7.
    const rows = 6000;
    const normal = normalSampler(mulberry32(41));
    const x = Array.from({ length: rows }, (_, r) => [
      (r < 4000 ? 1e20 : -1e20) + 1e16 * normal(),
      r % 997 === 3 ? 3e38 : 1e4 + normal(),
      r % 5 === 0 ? NaN : 1e-15 + 1e-17 * normal(),
      7,
    ]);
    const ref = nanReference(x);
    for (const [name, engine] of families()) {
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(x);
        expect(Array.from(s.nSamplesSeenPerFeature!), name).toEqual(ref.count);
        expect(nanRelative(s.mean!, ref.mean), `${name} mean`).toBeLessThan(1e-6);
        expect(nanRelative(s.var!.slice(0, 3), ref.var.slice(0, 3)), `${name} var`).toBeLessThan(1e-5);
        expect(s.var![3], `${name} constant feature`).toBe(0);
        const m = await new MinMaxScaler(engine).fit(x);
        expect(Array.from(m.dataMin!), name).toEqual(ref.min);
        expect(Array.from(m.dataMax!), name).toEqual(ref.max);
      });
    }
  });
});

describe('typed errors', () => {

  test('not fitted, wrong feature count, bad shapes and options', async () => {
    for (const [, engine] of backends()) {
      const s = new StandardScaler(engine);
      expect(errorCode(() => s.transform([[1, 2]]))).toBe('NOT_FITTED');
      await s.fit([[1, 2], [3, 4]]);
      expect(errorCode(() => s.transform([[1, 2, 3]]))).toBe('FEATURE_MISMATCH');
      expect(await asyncErrorCode(() => s.partialFit([[1, 2, 3]]))).toBe('FEATURE_MISMATCH');
      // fit starts over, so a new feature count is fine.
      await s.fit([[1, 2, 3]]);
      expect(s.nFeaturesIn).toBe(3);
      const t3: Tensor = engine.tensor(new Float32Array(8), [2, 2, 2]);
      expect(await asyncErrorCode(() => s.fit(t3))).toBe('INVALID_SHAPE');
      expect(await asyncErrorCode(() => s.fit([[1, 2], [3]]))).toBe('INVALID_SHAPE');
      expect(await asyncErrorCode(() => s.fit([]))).toBe('INVALID_SHAPE');
      expect(errorCode(() => new MinMaxScaler(engine, { featureRange: [1, 1] }))).toBe('INVALID_ARGUMENT');
      t3.dispose();
      expect(await asyncErrorCode(() => s.fit(t3))).toBe('DISPOSED_TENSOR');
    }
    const foreign = cpu.tensor(new Float32Array(4), [2, 2]);
    expect(await asyncErrorCode(() => new StandardScaler(gpu).fit(foreign))).toBe('FOREIGN_TENSOR');
  });
});

/** Per feature, scikit-learn's statistics of the non-NaN values (nanmean, nanvar, nanmin, nanmax), in float64. */
function nanReference(rows: readonly (readonly number[])[]) {
  const features = rows[0].length;
  const ref = Array.from({ length: features }, (_, j) => {
    const v = rows.map((r) => Math.fround(r[j])).filter((x) => !Number.isNaN(x));
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
    return { count: v.length, mean, variance, min: v.length ? Math.min(...v) : NaN, max: v.length ? Math.max(...v) : NaN };
  });
  return { count: ref.map((r) => r.count), mean: ref.map((r) => r.mean), var: ref.map((r) => r.variance), min: ref.map((r) => r.min), max: ref.map((r) => r.max) };
}

/** max |a - e| / |e| over the entries where `e` is a number; NaN entries of `e` must be NaN in `a`. */
function nanRelative(a: ArrayLike<number>, e: readonly number[]): number {
  let worst = 0;
  e.forEach((ei, i) => {
    if (Number.isNaN(ei)) worst = Number.isNaN(a[i]) ? worst : Infinity;
    else worst = Math.max(worst, Math.abs(a[i] - ei) / Math.abs(ei));
  });
  return worst;
}

describe('NaN is a missing value in fit, as scikit-learn', () => {
  // Feature 0: NaN in row 0 (the column's usual shift) and every 7th row; 1: none; 2: all NaN;
  // 3: NaN over whole stage-1 chunks (empty partials: 1250 rows on a software adapter, 250 on
  // the other family); 4: NaN in the last row only.
  const rows = 5000;
  const nanAt = (r: number, j: number) => (j === 0 ? r % 7 === 0 : j === 2 || (j === 3 ? r >= 1250 && r < 2500 : j === 4 && r === rows - 1));
  const data = offsetData(rows, 5, 21);
  const x = Array.from({ length: rows }, (_, r) => Array.from({ length: 5 }, (_, j) => (nanAt(r, j) ? NaN : data[r * 5 + j])));
  const ref = nanReference(x);

  test('StandardScaler: per-feature counts, nanmean and nanvar; transform keeps NaN as NaN', async () => {
    expect(ref.count).toEqual([rows - Math.ceil(rows / 7), rows, 0, rows - 1250, rows - 1]);
    for (const [name, engine] of families()) {
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(x);
        expect(s.nSamplesSeen, name).toBe(rows);
        expect(Array.from(s.nSamplesSeenPerFeature!), name).toEqual(ref.count);
        expect(nanRelative(s.mean!, ref.mean), `${name} mean`).toBeLessThan(1e-9);
        expect(nanRelative(s.var!, ref.var), `${name} var`).toBeLessThan(2e-6);
        expect(Number.isNaN(s.scale![2]), `${name}: a feature without values has scale NaN`).toBe(true);
        const z = await s.transform(x.slice(0, 300)).read();
        for (let i = 0; i < z.length; i++) {
          const [r, j] = [Math.floor(i / 5), i % 5];
          if (nanAt(r, j) || j === 2) {
            expect(z[i], `${name} z[${r}][${j}]`).toBeNaN();
          } else {
            const expected = (Math.fround(x[r][j]) - ref.mean[j]) / Math.sqrt(ref.var[j]);
            expect(Math.abs(z[i] - expected), `${name} z[${r}][${j}]`).toBeLessThan(1e-4 * (1 + Math.abs(expected)));
          }
        }
        // partialFit over batches that split the NaN runs equals fit.
        const parts = new StandardScaler(engine);
        for (const [a, b] of [[0, 1], [1, 100], [100, 3000], [3000, rows]]) await parts.partialFit(x.slice(a, b));
        expect(Array.from(parts.nSamplesSeenPerFeature!), name).toEqual(ref.count);
        expect(nanRelative(parts.mean!, ref.mean), `${name} partialFit mean`).toBeLessThan(1e-9);
        expect(nanRelative(parts.var!, ref.var), `${name} partialFit var`).toBeLessThan(2e-6);
      });
    }
  });

  test('MinMaxScaler: nanmin and nanmax, NaN for a feature without values', async () => {
    for (const [name, engine] of families()) {
      await run(engine, async () => {
        const m = await new MinMaxScaler(engine).fit(x);
        expect(Array.from(m.dataMin!), name).toEqual(ref.min);
        expect(Array.from(m.dataMax!), name).toEqual(ref.max);
        expect(m.nSamplesSeen, name).toBe(rows);
      });
    }
  });
});

/** Lower an engine's binding limit (the backend's `maxBindingBytes`, read by every size check). */
function limitBindings(engine: Engine, bytes: number): Engine {
  Object.defineProperty(engine.internalBackend, 'maxBindingBytes', { value: bytes });
  return engine;
}

describe('host rows beyond one buffer binding', () => {
  test('are fitted in row chunks (fit, partialFit, fitTransform refused), equal to one pass', async () => {
    const rows = 3000;
    const features = 3;
    const data = offsetData(rows, features, 31);
    const x = Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * features, (r + 1) * features)));
    const ref = reference(data, rows, features);
    for (const kind of ['cpu', 'webgpu'] as const) {
      // 4 KiB bindings: 341 rows of 3 floats per chunk, 9 chunks.
      const engine = limitBindings(kind === 'cpu' ? await createEngine({ backend: 'cpu' }) : await makeGpuEngine(), 4096);
      await run(engine, async () => {
        const s = await new StandardScaler(engine).fit(x);
        expect(s.nSamplesSeen).toBe(rows);
        expect(maxRelative(s.mean!, ref.mean), kind).toBeLessThan(1e-9);
        expect(maxRelative(s.scale!, ref.std), kind).toBeLessThan(1e-6);
        const parts = new MinMaxScaler(engine);
        await parts.partialFit(x.slice(0, 1200));
        await parts.partialFit(x.slice(1200));
        expect(Array.from(parts.dataMin!), kind).toEqual(Array.from(ref.min));
        expect(Array.from(parts.dataMax!), kind).toEqual(Array.from(ref.max));
        // A transform's output is one tensor: it must fit.
        expect(errorCode(() => s.transform(x)), kind).toBe('TENSOR_TOO_LARGE');
        expect(await asyncErrorCode(() => new StandardScaler(engine).fitTransform(x)), kind).toBe('TENSOR_TOO_LARGE');
        const z = await s.transform(x.slice(0, 300)).read();
        expect(Math.abs(z[0] - (data[0] - ref.mean[0]) / ref.std[0]), kind).toBeLessThan(1e-4);
      });
      engine.dispose();
    }
  });

  // Minutes on a busy software adapter: 34M values go through JS rows, the GPU and the CPU backend.
  test('a device with default limits (128 MiB bindings) fits 136 MB of rows as the CPU backend does', { timeout: 600_000 }, async () => {
    // A second device of the same Dawn instance, requested without limits: WebGPU's defaults.
    const dawn = (gpu.internalBackend as WebGpuBackend).keepAlive as GPU | undefined;
    expect(dawn, 'the engine holds Dawn in Node').toBeDefined();
    const device = await (await dawn!.requestAdapter())!.requestDevice();
    expect(device.limits.maxStorageBufferBindingSize).toBe(128 * 2 ** 20);
    const small = await createEngine({ device });
    try {
      const rows = 340_000;
      const features = 100; // 34M floats: 136 MB, over 134,217,728 bytes
      const rng = mulberry32(41);
      const x: number[][] = new Array(rows);
      for (let r = 0; r < rows; r++) {
        const row = new Array<number>(features);
        for (let j = 0; j < features; j++) row[j] = 1e3 * (j + 1) + (1 + (j % 7)) * rng();
        x[r] = row;
      }
      const fitted = await run(small, () => new StandardScaler(small).fit(x));
      const reference = await new StandardScaler(cpu).fit(x);
      expect(fitted.nSamplesSeen).toBe(rows);
      expect(maxRelative(fitted.mean!, reference.mean!)).toBeLessThan(1e-9);
      expect(maxRelative(fitted.var!, reference.var!)).toBeLessThan(2e-6);
      expect(errorCode(() => small.tensor(new Float32Array(rows * features), [rows, features]))).toBe('TENSOR_TOO_LARGE');
    } finally {
      small.dispose();
      device.destroy();
    }
  });
});
