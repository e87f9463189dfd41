/**
 * Backward passes (engine.normForward / normBackward): the PyTorch autograd goldens of
 * test/golden-grad on both backends, the GPU stages against the CPU backend's float64 twins for
 * every op, layout and output mask on hard inputs, and the backward from saved statistics
 * against the one from x alone.
 */
import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runGoldenSuite, type GoldenManifest } from '../src/accuracy/runner';
import { createEngine, type Engine, type Tensor } from '../src/index';
import { makeGpuEngine, withValidation } from './support/gpu';

const GOLDEN = join(__dirname, 'golden-grad');
let gpu: Engine;
let cpu: Engine;
/** Both kernel families, forced: grad_serial (software adapters) and the staged GPU kernels. */
const FAMILIES = ['serial', 'parallel'] as const;
type Family = (typeof FAMILIES)[number];
const gpus = {} as Record<Family, Engine>;

beforeAll(async () => {
  gpu = await makeGpuEngine();
  cpu = await createEngine({ backend: 'cpu' });
  for (const f of FAMILIES) gpus[f] = await makeGpuEngine({ kernels: f });
});
afterAll(() => {
  gpu?.dispose();
  cpu?.dispose();
  for (const f of FAMILIES) gpus[f]?.dispose();
});

describe('golden-grad (PyTorch autograd, float64)', () => {
  const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as GoldenManifest;
  const load = async (name: string) => {
    const b = readFileSync(join(GOLDEN, name));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };
  test.each([...FAMILIES, 'cpu'] as const)('every case passes on %s, offset ones within 1e-4, the rest within 1e-5', async (backend) => {
    const engine = backend === 'cpu' ? cpu : gpus[backend];
    const run = () => runGoldenSuite(engine, manifest, load);
    const report = backend === 'cpu' ? await run() : await withValidation(engine, run);
    expect(report.cases).toHaveLength(manifest.cases.length);
    let worst = 0;
    for (const c of report.cases) {
      expect(c.pass, `${c.id}: ${c.reason ?? c.maxScaledError}`).toBe(true);
      expect(c.tolerance).toBe((manifest.cases.find((m) => m.id === c.id)!.params.dist === 'offset') ? 1e-4 : 1e-5);
      worst = Math.max(worst, c.maxScaledError!);
    }
    console.log(`[golden-grad ${backend}] ${report.cases.length} cases, worst scaled error ${worst.toExponential(2)}`);
  });
});

type Op = 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';
interface Case {
  name: string;
  op: Op;
  shape: number[];
  layout: 'channels-first' | 'channels-last';
  options: Record<string, unknown>;
  /** Parameter count. */
  params: number;
}

const CASES: Case[] = [
  { name: 'BN train NCHW', op: 'batchNorm', shape: [3, 5, 7, 3], layout: 'channels-first', options: { training: true }, params: 5 },
  { name: 'BN train NHWC', op: 'batchNorm', shape: [3, 7, 3, 5], layout: 'channels-last', options: { training: true }, params: 5 },
  { name: 'BN train [N, C]', op: 'batchNorm', shape: [9, 6], layout: 'channels-first', options: { training: true }, params: 6 },
  { name: 'BN eval NCHW', op: 'batchNorm', shape: [2, 5, 4, 3], layout: 'channels-first', options: { training: false }, params: 5 },
  { name: 'BN eval NHWC', op: 'batchNorm', shape: [2, 4, 3, 5], layout: 'channels-last', options: { training: false }, params: 5 },
  { name: 'IN NCHW', op: 'instanceNorm', shape: [2, 3, 5, 7], layout: 'channels-first', options: {}, params: 3 },
  { name: 'IN NHWC', op: 'instanceNorm', shape: [2, 5, 7, 3], layout: 'channels-last', options: {}, params: 3 },
  { name: 'GN NCHW', op: 'groupNorm', shape: [2, 6, 5, 3], layout: 'channels-first', options: { numGroups: 3 }, params: 6 },
  { name: 'GN NHWC', op: 'groupNorm', shape: [2, 5, 3, 6], layout: 'channels-last', options: { numGroups: 2 }, params: 6 },
  { name: 'GN NCL one group', op: 'groupNorm', shape: [3, 4, 11], layout: 'channels-first', options: { numGroups: 1 }, params: 4 },
  { name: 'LN [rows, 37]', op: 'layerNorm', shape: [5, 37], layout: 'channels-first', options: { normalizedShape: [37] }, params: 37 },
  { name: 'LN [2, 3, 4, 5] over [4, 5]', op: 'layerNorm', shape: [2, 3, 4, 5], layout: 'channels-first', options: { normalizedShape: [4, 5] }, params: 20 },
  { name: 'RMS [7, 33]', op: 'rmsNorm', shape: [7, 33], layout: 'channels-first', options: { normalizedShape: 33 }, params: 33 },
  // grad_serial's entries and modes: lanes of 1, 2 and 8 channels per group, DIRECT parameter
  // sums over several samples, vec4 spans with cells, blocks of rows with a short last block.
  { name: 'IN NHWC 64 channels', op: 'instanceNorm', shape: [2, 3, 2, 64], layout: 'channels-last', options: {}, params: 64 },
  { name: 'BN train NHWC 8 channels', op: 'batchNorm', shape: [3, 5, 2, 8], layout: 'channels-last', options: { training: true }, params: 8 },
  { name: 'BN eval NHWC 8 channels', op: 'batchNorm', shape: [2, 3, 2, 8], layout: 'channels-last', options: { training: false }, params: 8 },
  { name: 'GN NHWC 2 channels per group', op: 'groupNorm', shape: [2, 3, 5, 8], layout: 'channels-last', options: { numGroups: 4 }, params: 8 },
  { name: 'GN NHWC 8 channels per group', op: 'groupNorm', shape: [2, 3, 2, 16], layout: 'channels-last', options: { numGroups: 2 }, params: 16 },
  { name: 'IN NCHW 16 channels', op: 'instanceNorm', shape: [2, 16, 3, 4], layout: 'channels-first', options: {}, params: 16 },
  { name: 'GN NCHW planes of 8', op: 'groupNorm', shape: [2, 6, 4, 2], layout: 'channels-first', options: { numGroups: 3 }, params: 6 },
  { name: 'LN [70, 12]', op: 'layerNorm', shape: [70, 12], layout: 'channels-first', options: { normalizedShape: [12] }, params: 12 },
  { name: 'RMS [50, 9]', op: 'rmsNorm', shape: [50, 9], layout: 'channels-first', options: { normalizedShape: 9 }, params: 9 },
];

/** Long rows and many rows: several chunks in every stage-1 variant. */
const LARGE: Case[] = [
  { name: 'LN one row of 20000', op: 'layerNorm', shape: [2, 20000], layout: 'channels-first', options: { normalizedShape: [20000] }, params: 20000 },
  { name: 'BN NHWC 8x40x40x16', op: 'batchNorm', shape: [8, 40, 40, 16], layout: 'channels-last', options: { training: true }, params: 16 },
  { name: 'BN NCHW planes of 9000', op: 'batchNorm', shape: [2, 3, 90, 100], layout: 'channels-first', options: { training: true }, params: 3 },
  { name: 'GN NHWC 2x60x60x12', op: 'groupNorm', shape: [2, 60, 60, 12], layout: 'channels-last', options: { numGroups: 4 }, params: 12 },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function rng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

type Dist = 'normal' | 'offset' | 'constant' | 'tiny' | 'nan';
function data(dist: Dist, n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = Float32Array.from({ length: n }, () => r());
  if (dist === 'offset') for (let i = 0; i < n; i++) out[i] = 1e4 + out[i];
  if (dist === 'constant') out.fill(2.5);
  if (dist === 'tiny') for (let i = 0; i < n; i++) out[i] *= 1e-30;
  if (dist === 'nan') out[Math.floor(n / 3)] = NaN;
  return out;
}

/** Forward options with affine parameters (and running statistics) on `engine`. */
function optionsFor(c: Case, engine: Engine, affine: boolean, seed: number): Record<string, unknown> {
  const r = rng(seed);
  const o: Record<string, unknown> = { ...c.options };
  if (affine) {
    o.weight = Float32Array.from({ length: c.params }, () => 1 + 0.5 * r());
    if (c.op !== 'rmsNorm') o.bias = Float32Array.from({ length: c.params }, () => r());
  }
  if (c.op === 'batchNorm') {
    o.runningMean = engine.tensor(Float32Array.from({ length: c.params }, (_, i) => 0.1 * i), [c.params]);
    o.runningVar = engine.tensor(Float32Array.from({ length: c.params }, (_, i) => 1 + 0.5 * i), [c.params]);
  }
  return o;
}

/** Max scaled error, NaN matching NaN. */
function scaled(a: Float32Array, e: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < e.length; i++) {
    if (Number.isNaN(e[i]) || Number.isNaN(a[i])) {
      if (Number.isNaN(e[i]) !== Number.isNaN(a[i])) return Infinity;
      continue;
    }
    worst = Math.max(worst, Math.abs(a[i] - e[i]) / (1 + Math.abs(e[i])));
  }
  return worst;
}

/** Max |a - e| / (1 + max |e|): the error on the output's scale. */
function scaledToMax(a: Float32Array, e: Float32Array): number {
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i])), 0) / (1 + scale);
}

interface Result { dx?: Float32Array; dweight?: Float32Array; dbias?: Float32Array }

/** normForward + normBackward on `engine` (from saved statistics, or from x), read back. */
async function gradients(
  engine: Engine, c: Case, x0: Float32Array, dy0: Float32Array, mask: { input: boolean; weight: boolean; bias: boolean },
  opts: { affine: boolean; seed: number; fromX?: boolean },
): Promise<Result> {
  const made: Tensor[] = [];
  const t = (v: Tensor) => { made.push(v); return v; };
  try {
    const options = optionsFor(c, engine, opts.affine, opts.seed);
    for (const k of ['runningMean', 'runningVar']) if (options[k]) t(options[k] as Tensor);
    const x = t(engine.tensor(x0, c.shape, { layout: c.layout }));
    const dy = t(engine.tensor(dy0, c.shape, { layout: c.layout }));
    const f = engine.normForward(c.op, x, options as never);
    t(f.y);
    t(f.saved.rstd);
    if (f.saved.mean) t(f.saved.mean);
    const g = engine.normBackward(c.op, dy, x, { ...options, outputMask: mask, ...(opts.fromX ? {} : { saved: f.saved }) } as never);
    const out: Result = {};
    if (g.dx) out.dx = await t(g.dx).read();
    if (g.dweight) out.dweight = await t(g.dweight).read();
    if (g.dbias) out.dbias = await t(g.dbias).read();
    return out;
  } finally {
    for (const m of made) m.dispose();
  }
}

const MASKS = [
  { input: true, weight: true, bias: true },
  { input: true, weight: false, bias: false },
  { input: false, weight: true, bias: false },
  { input: false, weight: false, bias: true },
  { input: true, weight: true, bias: false },
];

describe('GPU against the CPU backend', () => {
  const DISTS: Dist[] = ['normal', 'offset', 'constant', 'tiny', 'nan'];
  test.each(CASES)('$name: every output mask, normal/offset/constant/tiny/NaN inputs, within 1e-5', async (c) => {
    let seed = 1;
    for (const dist of DISTS) {
      for (const maskIn of MASKS) {
        const mask = { ...maskIn, bias: maskIn.bias && c.op !== 'rmsNorm' };
        for (const affine of [true, false]) {
          seed++;
          const x = data(dist, size(c.shape), seed);
          const dy = data('normal', size(c.shape), seed + 1000);
          const args = { affine, seed } as const;
          const e = await gradients(cpu, c, x, dy, mask, args);
          for (const family of FAMILIES) {
            const g = gpus[family];
            const a = await withValidation(g, () => gradients(g, c, x, dy, mask, args));
            expect(Object.keys(a).sort(), `${family} ${dist} ${JSON.stringify(mask)}`).toEqual(
              (['dx', 'dweight', 'dbias'] as const).filter((k) => mask[k === 'dx' ? 'input' : k === 'dweight' ? 'weight' : 'bias']).sort(),
            );
            for (const k of Object.keys(e) as (keyof Result)[]) {
              // A constant group (or a tiny one, whose variance is far below eps) has rstd =
              // 1/sqrt(eps) ~ 316 and dx = rstd * (g - mean(g)): float32 rounding of g and mean(g)
              // is amplified 316x where g nearly equals its mean, so its dx is held to 1e-5 of the
              // output's scale (as float32 PyTorch would be), not of each element.
              const err = dist === 'constant' || dist === 'tiny' ? scaledToMax(a[k]!, e[k]!) : scaled(a[k]!, e[k]!);
              expect(err, `${family} ${c.name} ${dist} affine=${affine} ${k}`).toBeLessThanOrEqual(1e-5);
            }
          }
          if (dist === 'nan' && e.dx && !c.name.startsWith('BN eval')) {
            expect(e.dx.some(Number.isNaN), 'a NaN input makes its group NaN').toBe(true);
          }
        }
      }
    }
  });

  test.each(LARGE)('$name: several chunks per stage, offset inputs, within 1e-5', async (c) => {
    for (const dist of ['normal', 'offset'] as const) {
      const x = data(dist, size(c.shape), 7);
      const dy = data('normal', size(c.shape), 8);
      const mask = { input: true, weight: true, bias: c.op !== 'rmsNorm' };
      const e = await gradients(cpu, c, x, dy, mask, { affine: true, seed: 3 });
      for (const family of FAMILIES) {
        const g = gpus[family];
        const a = await withValidation(g, () => gradients(g, c, x, dy, mask, { affine: true, seed: 3 }));
        for (const k of Object.keys(e) as (keyof Result)[]) {
          expect(scaled(a[k]!, e[k]!), `${family} ${c.name} ${dist} ${k}`).toBeLessThanOrEqual(1e-5);
        }
      }
    }
  });

  // An infinite upstream gradient makes its group's sums infinite: every output the float64
  // reference gets finite (the other groups, the other parameters) stays within 1e-5, and every
  // one it gets infinite or NaN is non-finite too (NaN or an infinity: the float32 stages fold
  // the centre correction in after the sums, where inf - inf may give NaN).
  test.each(CASES)('$name: infinite dy', async (c) => {
    const n = size(c.shape);
    const x = data('normal', n, 21);
    const dy = data('normal', n, 22);
    dy[Math.floor(n / 3)] = Infinity;
    dy[n - 1] = -Infinity;
    const mask = { input: true, weight: true, bias: c.op !== 'rmsNorm' };
    const e = await gradients(cpu, c, x, dy, mask, { affine: true, seed: 23 });
    expect(e.dx!.some((v) => !Number.isFinite(v)), 'the reference has non-finite dx').toBe(true);
    for (const family of FAMILIES) {
      const g = gpus[family];
      const a = await withValidation(g, () => gradients(g, c, x, dy, mask, { affine: true, seed: 23 }));
      for (const k of Object.keys(e) as (keyof Result)[]) {
        const finite = e[k]!.map((v) => (Number.isFinite(v) ? 1 : 0));
        expect(Array.from(a[k]!, (v) => (Number.isFinite(v) ? 1 : 0)), `${family} ${k}: finite where the reference is`).toEqual(Array.from(finite));
        const keep = (t: Float32Array) => t.filter((_, i) => finite[i] === 1);
        expect(scaled(keep(a[k]!), keep(e[k]!)), `${family} ${k}`).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  test.each([...CASES.slice(0, 3), CASES[5], CASES[8], CASES[10], CASES[12]])('$name: the backward from x equals the one from saved statistics', async (c) => {
    const x = data('offset', size(c.shape), 11);
    const dy = data('normal', size(c.shape), 12);
    const mask = { input: true, weight: true, bias: c.op !== 'rmsNorm' };
    for (const engine of [gpus.serial, gpus.parallel, cpu]) {
      const saved = await gradients(engine, c, x, dy, mask, { affine: true, seed: 5 });
      const fromX = await gradients(engine, c, x, dy, mask, { affine: true, seed: 5, fromX: true });
      for (const k of Object.keys(saved) as (keyof Result)[]) {
        expect(scaled(fromX[k]!, saved[k]!), `${engine.backend} ${k}`).toBeLessThanOrEqual(engine === cpu ? 1e-7 : 1e-6);
      }
    }
  });
});

describe('dispatch limits', () => {
  // More channels-last blocks (samples) than workgroups per dimension: stage 1 folds its grid.
  test.each(FAMILIES)('%s: InstanceNorm NHWC of 1030 samples on a device reporting 1024 workgroups per dimension', async (family) => {
    Object.assign(globalThis, globals);
    // Dawn's GPU object must stay reachable for the life of the process (as in limits.gpu.test.ts).
    const dawn = ((globalThis as Record<string, unknown>).__normgpuTestDawn ??= create([])) as GPU;
    const device = await (await dawn.requestAdapter())!.requestDevice({ label: 'capped-dispatch' });
    // An own `limits` shadows the prototype's getter: the planner sees the lower cap.
    const limits: Record<string, number> = {};
    for (const k in device.limits) limits[k] = (device.limits as unknown as Record<string, number>)[k];
    Object.defineProperty(device, 'limits', { value: { ...limits, maxComputeWorkgroupsPerDimension: 1024 } });
    const engine = await createEngine({ device, kernels: family });
    try {
      const c: Case = { name: 'IN NHWC 1030', op: 'instanceNorm', shape: [1030, 2, 1, 4], layout: 'channels-last', options: {}, params: 4 };
      const x = data('normal', size(c.shape), 31);
      const dy = data('normal', size(c.shape), 32);
      const mask = { input: true, weight: true, bias: true };
      const a = await withValidation(engine, () => gradients(engine, c, x, dy, mask, { affine: true, seed: 33 }));
      const e = await gradients(cpu, c, x, dy, mask, { affine: true, seed: 33 });
      for (const k of ['dx', 'dweight', 'dbias'] as const) expect(scaled(a[k]!, e[k]!), k).toBeLessThanOrEqual(1e-5);
    } finally {
      engine.dispose();
      device.destroy();
    }
  });
});

describe('explainBackward and prepareBackward', () => {
  const ln = { normalizedShape: [768], weight: Float32Array.from({ length: 768 }, () => 1.5), bias: new Float32Array(768) };

  test('each family reports its stages, with the statistics stages first without saved statistics', async () => {
    const x = gpus.serial.tensor(new Float32Array(4 * 768), [4, 768]);
    const xp = gpus.parallel.tensor(new Float32Array(4 * 768), [4, 768]);
    const xc = cpu.tensor(new Float32Array(4 * 768), [4, 768]);
    try {
      const rstd = gpus.serial.tensor(new Float32Array(4).fill(1), [4]);
      const saved = { mean: rstd, rstd };
      const serial = gpus.serial.explainBackward('layerNorm', x, { ...ln, saved });
      expect(serial.kernels.map((k) => `${k.stage}:${k.variant}`)).toEqual(['gradSerial:rows_vec4', 'mergeGrad:params']);
      expect(serial.traffic.dispatches).toBe(2);
      expect(serial.traffic.idealReadBytes).toBe(2 * 4 * 768 * 4);
      expect(serial.traffic.idealWriteBytes).toBe((4 + 2) * 768 * 4);
      expect(serial.traffic.ratio).toBeGreaterThan(1);
      expect(serial.tuning).toBeNull();
      const dxOnly = gpus.serial.explainBackward('layerNorm', x, { ...ln, saved, outputMask: { weight: false, bias: false } });
      expect(dxOnly.kernels.map((k) => k.stage)).toEqual(['gradSerial']);
      const parallel = gpus.parallel.explainBackward('layerNorm', xp, ln);
      const stages = parallel.kernels.map((k) => k.stage);
      expect(stages.slice(-5)).toEqual(['reduceGrad', 'mergeGrad', 'reduceGrad', 'mergeGrad', 'applyGrad']);
      expect(stages.indexOf('savedStats')).toBe(stages.length - 6);
      expect(stages.slice(0, -6)).toEqual(gpus.parallel.explain('moments', xp, { axes: [1] }).kernels.map((k) => k.stage));
      const onCpu = cpu.explainBackward('batchNorm', cpu.tensor(new Float32Array(24), [2, 3, 4]), { training: true, weight: [1, 2, 3] });
      expect(onCpu.kernels.map((k) => k.stage)).toEqual(['reduceStats', 'finalizeMoments', 'savedStats', 'reduceGrad', 'paramGrad', 'applyGrad']);
      expect(onCpu.traffic.dispatches).toBe(0);
      rstd.dispose();
    } finally {
      for (const t of [x, xp, xc]) t.dispose();
    }
  });

  test.each(FAMILIES)('%s: after prepareBackward a training step compiles nothing', async (family) => {
    const fresh = await makeGpuEngine({ kernels: family });
    try {
      const shape = [2, 6, 5, 4];
      const options = { numGroups: 3, weight: [1, 2, 3, 4, 5, 6], bias: [0, 0, 0, 1, 1, 1] };
      await fresh.prepare('groupNorm', shape, options);
      await fresh.prepareBackward('groupNorm', shape, options);
      const { trackGpuWork } = await import('./support/gpu');
      const tracker = trackGpuWork(fresh);
      const x = fresh.tensor(data('normal', 240, 1), shape);
      const f = fresh.normForward('groupNorm', x, options);
      const g = fresh.normBackward('groupNorm', x, x, { ...options, saved: f.saved });
      const fromX = fresh.normBackward('groupNorm', x, x, options);
      fresh.flush();
      tracker.restore();
      expect(tracker.log.filter((c) => c.startsWith('device.createComputePipeline'))).toEqual([]);
      expect(await g.dx!.read()).toEqual(await fromX.dx!.read());
    } finally {
      fresh.dispose();
    }
    await cpu.prepareBackward('layerNorm', [2, 3], { normalizedShape: [3] });
    await expect(cpu.prepareBackward('moments' as never, [2, 3], {} as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('bad input: a typed error before any GPU work', () => {
  const shape = [2, 3, 4, 5];
  const cases: [string, (e: Engine, t: Record<string, Tensor>) => unknown, string][] = [
    ['dy of another shape', (e, t) => e.normBackward('batchNorm', t.dyShort, t.x, { training: true }), 'GRADIENT_MISMATCH'],
    ['dy of another layout', (e, t) => e.normBackward('instanceNorm', t.dyLast, t.x, {}), 'GRADIENT_MISMATCH'],
    ['saved mean of the wrong length', (e, t) => e.normBackward('groupNorm', t.dy, t.x, { numGroups: 3, saved: { mean: t.short, rstd: t.six } }), 'PARAM_LENGTH_MISMATCH'],
    ['saved without rstd', (e, t) => e.normBackward('layerNorm', t.dy, t.x, { normalizedShape: [5], saved: { mean: t.six } as never }), 'INVALID_ARGUMENT'],
    ['saved without mean (not RMSNorm)', (e, t) => e.normBackward('instanceNorm', t.dy, t.x, { saved: { rstd: t.six } }), 'INVALID_ARGUMENT'],
    ['a bias gradient of RMSNorm', (e, t) => e.normBackward('rmsNorm', t.dy, t.x, { normalizedShape: 5, outputMask: { bias: true } }), 'INVALID_ARGUMENT'],
    ['an outputMask that is not an object', (e, t) => e.normBackward('rmsNorm', t.dy, t.x, { normalizedShape: 5, outputMask: true as never }), 'INVALID_ARGUMENT'],
    ['a mask entry that is not a boolean', (e, t) => e.normBackward('rmsNorm', t.dy, t.x, { normalizedShape: 5, outputMask: { input: 1 as never } }), 'INVALID_ARGUMENT'],
    ['the backward of a residual epilogue', (e, t) => e.normBackward('layerNorm', t.dy, t.x, { normalizedShape: 5, residual: t.x } as never), 'INVALID_ARGUMENT'],
    ['BatchNorm inference without running statistics', (e, t) => e.normBackward('batchNorm', t.dy, t.x, { training: false }), 'RUNNING_STATS_REQUIRED'],
    ['a weight of the wrong length', (e, t) => e.normBackward('groupNorm', t.dy, t.x, { numGroups: 3, weight: [1, 2] }), 'PARAM_LENGTH_MISMATCH'],
    ['moments, which has no backward', (e, t) => e.normBackward('moments' as never, t.dy, t.x, {} as never), 'INVALID_ARGUMENT'],
    ['normForward of an activation epilogue', (e, t) => e.normForward('groupNorm', t.x, { numGroups: 3, activation: 'relu' } as never), 'INVALID_ARGUMENT'],
    ['a disposed dy', (e, t) => e.normBackward('layerNorm', t.gone, t.x, { normalizedShape: 5 }), 'DISPOSED_TENSOR'],
  ];
  test.each(['webgpu', 'cpu'] as const)('%s', async (backend) => {
    const e = backend === 'webgpu' ? gpu : cpu;
    const f = (n: number, s: number[], layout: 'channels-first' | 'channels-last' = 'channels-first') => e.tensor(new Float32Array(n).fill(1), s, { layout });
    const t: Record<string, Tensor> = {
      x: f(120, shape), dy: f(120, shape), dyShort: f(60, [2, 3, 2, 5]), dyLast: f(120, shape, 'channels-last'),
      six: f(6, [6]), short: f(5, [5]), gone: f(120, shape),
    };
    t.gone.dispose();
    const { trackGpuWork } = await import('./support/gpu');
    for (const [what, call, code] of cases) {
      const tracker = backend === 'webgpu' ? trackGpuWork(e) : null;
      try {
        expect(() => call(e, t), what).toThrow(expect.objectContaining({ code }));
        if (tracker) expect(tracker.log, what).toEqual([]);
      } finally {
        tracker?.restore();
      }
    }
    for (const v of Object.values(t)) v.dispose();
  });
});
