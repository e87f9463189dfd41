/**
 * The stateful modules (issue 10 item 2) on both backends: BatchNorm1d/2d/3d train/eval and
 * running statistics (momentum 0.1, null = cumulative, trackRunningStats false, affine false)
 * against a float64 reference of PyTorch's semantics; the `module` goldens of the golden-model
 * suite; InstanceNorm's optional running statistics; forward/backward of every module GPU vs
 * CPU, with gradients accumulating into `.grad` and checked by finite differences; state dicts
 * (PyTorch keys, nested lists, strict checks that throw before any GPU work); SGD; disposal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  BatchNorm1d, BatchNorm2d, BatchNorm3d, createEngine, GroupNorm, InstanceNorm2d, LayerNorm, RMSNorm, SGD,
  type Engine, type Layout, type Module, type Tensor,
} from '../src/index';
import { MODULE_OPS, runModuleCase } from '../src/accuracy/module-cases';
import { errorCode, generate, makeGpuEngine, mulberry32, normalSampler, scaledError, sizeOf, trackGpuWork, withEngines, withValidation, worstElement } from './support/gpu';

const TOL = 1e-5;
const GOLDEN = join(__dirname, 'golden-model');

let gpu: Engine;
let cpu: Engine;

withEngines(async () => [gpu = await makeGpuEngine(), cpu = await createEngine({ backend: 'cpu' })]);

/** Run `fn` on each backend, the GPU one inside validation scopes. */
async function onBoth(fn: (engine: Engine) => Promise<void>): Promise<void> {
  await withValidation(gpu, () => fn(gpu));
  await fn(cpu);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = TOL): void {
  expect(scaledError(actual, expected), `${what}: ${worstElement(actual, expected)}`).toBeLessThanOrEqual(tol);
}

/** Channel of element i of a tensor of `shape` in `layout`. */
function channelIndex(shape: readonly number[], layout: Layout): (i: number) => number {
  const c = layout === 'channels-last' ? shape[shape.length - 1] : shape[1];
  const spatial = sizeOf(shape.slice(2));
  return layout === 'channels-last' ? (i) => i % c : (i) => Math.floor(i / spatial) % c;
}

/** Float64 per-channel batch statistics: mean, biased and unbiased variance. */
function channelStats(x: Float32Array, shape: readonly number[], layout: Layout) {
  const c = layout === 'channels-last' ? shape[shape.length - 1] : shape[1];
  const ch = channelIndex(shape, layout);
  const n = x.length / c;
  const mean = new Float64Array(c);
  const m2 = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[ch(i)] += x[i] / n;
  for (let i = 0; i < x.length; i++) m2[ch(i)] += (x[i] - mean[ch(i)]) ** 2;
  return { mean, biased: m2.map((v) => v / n), unbiased: m2.map((v) => v / (n - 1)) };
}

/** Float64 `y = (x − mean) / sqrt(var + eps) · w + b` with per-channel statistics and affine. */
function applyChannels(x: Float32Array, shape: readonly number[], layout: Layout, mean: ArrayLike<number>, variance: ArrayLike<number>, eps: number, w?: ArrayLike<number>, b?: ArrayLike<number>): Float64Array {
  const ch = channelIndex(shape, layout);
  return Float64Array.from(x, (v, i) => {
    const c = ch(i);
    return ((v - mean[c]) / Math.sqrt(variance[c] + eps)) * (w?.[c] ?? 1) + (b?.[c] ?? 0);
  });
}

const read = (t: Tensor) => t.read();
const dispose = (...ts: (Tensor | null | undefined)[]) => { for (const t of ts) t?.dispose(); };

describe('BatchNorm modules follow PyTorch: batch statistics and running updates in training, running statistics in eval', () => {
  const cases: { name: string; make: (e: Engine) => Module & { forward(x: Tensor): Tensor }; shape: number[]; layout: Layout; momentum: number | null; affine: boolean; track: boolean }[] = [
    { name: 'BatchNorm2d momentum 0.1', make: (e) => new BatchNorm2d(e, 3, { momentum: 0.1 }), shape: [4, 3, 5, 6], layout: 'channels-first', momentum: 0.1, affine: true, track: true },
    { name: 'BatchNorm2d momentum null (cumulative), channels-last', make: (e) => new BatchNorm2d(e, 5, { momentum: null }), shape: [3, 4, 2, 5], layout: 'channels-last', momentum: null, affine: true, track: true },
    { name: 'BatchNorm1d [N, C] without affine', make: (e) => new BatchNorm1d(e, 7, { affine: false }), shape: [9, 7], layout: 'channels-first', momentum: 0.1, affine: false, track: true },
    { name: 'BatchNorm1d [N, C, L], momentum 0.3', make: (e) => new BatchNorm1d(e, 4, { momentum: 0.3, eps: 1e-3 }), shape: [2, 4, 11], layout: 'channels-first', momentum: 0.3, affine: true, track: true },
    { name: 'BatchNorm3d channels-last', make: (e) => new BatchNorm3d(e, 3), shape: [2, 3, 2, 4, 3], layout: 'channels-last', momentum: 0.1, affine: true, track: true },
    { name: 'BatchNorm2d trackRunningStats false (batch statistics in eval too)', make: (e) => new BatchNorm2d(e, 3, { trackRunningStats: false }), shape: [2, 3, 4, 4], layout: 'channels-first', momentum: 0.1, affine: true, track: false },
  ];
  for (const k of cases) {
    test(k.name, async () => {
      await onBoth(async (engine) => {
        const m = k.make(engine) as BatchNorm2d;
        const c = k.layout === 'channels-last' ? k.shape[k.shape.length - 1] : k.shape[1];
        const eps = m.eps;
        const normal = normalSampler(mulberry32(5));
        const w = Float32Array.from({ length: c }, () => 0.5 + Math.abs(normal()));
        const b = Float32Array.from({ length: c }, () => normal());
        if (k.affine) m.loadStateDict({ weight: w, bias: b }, { strict: false });
        let rm = new Float64Array(c);
        let rv = new Float64Array(c).fill(1);
        for (let step = 0; step < 4; step++) {
          // A drifting distribution, offset 1e4 in the last step.
          const data = generate(step === 3 ? 'offset' : 'normal', sizeOf(k.shape), 100 + step).map((v) => v * (1 + step) + 2 * step);
          const x = engine.tensor(data, k.shape, { layout: k.layout });
          const y = m.forward(x);
          const s = channelStats(data, k.shape, k.layout);
          expectClose(await read(y), applyChannels(data, k.shape, k.layout, s.mean, s.biased, eps, k.affine ? w : undefined, k.affine ? b : undefined), `train step ${step}`, step === 3 ? 1e-4 : TOL);
          if (k.track) {
            const f = k.momentum ?? 1 / (step + 1);
            rm = rm.map((v, i) => (1 - f) * v + f * s.mean[i]);
            rv = rv.map((v, i) => (1 - f) * v + f * s.unbiased[i]);
            expectClose(await read(m.runningMean!), rm, `running_mean after step ${step}`);
            expectClose(await read(m.runningVar!), rv, `running_var after step ${step}`);
            expect(m.numBatchesTracked).toBe(step + 1);
          } else {
            expect(m.runningMean).toBeNull();
          }
          dispose(x, y);
        }
        m.eval();
        const data = generate('normal', sizeOf(k.shape), 7);
        const x = engine.tensor(data, k.shape, { layout: k.layout });
        const y = m.forward(x);
        const s = channelStats(data, k.shape, k.layout);
        const want = k.track ? applyChannels(data, k.shape, k.layout, rm, rv, eps, k.affine ? w : undefined, k.affine ? b : undefined)
          : applyChannels(data, k.shape, k.layout, s.mean, s.biased, eps, w, b);
        expectClose(await read(y), want, 'eval output');
        // Eval mode leaves the state alone.
        expect(m.numBatchesTracked).toBe(k.track ? 4 : 0);
        if (k.track) expectClose(await read(m.runningMean!), rm, 'running_mean after eval');
        const state = await m.stateDict();
        expect(Object.keys(state)).toEqual([...(k.affine ? ['weight', 'bias'] : []), ...(k.track ? ['running_mean', 'running_var', 'num_batches_tracked'] : [])]);
        dispose(x, y);
        m.dispose();
      });
    });
  }

  test('input rank and channel count are checked like PyTorch, before any GPU work', async () => {
    const bad: [string, () => unknown, string][] = [];
    const x4 = gpu.tensor(new Float32Array(2 * 3 * 2 * 2), [2, 3, 2, 2]);
    const x3 = gpu.tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
    const nhwc = gpu.tensor(new Float32Array(2 * 2 * 2 * 3), [2, 2, 2, 3], { layout: 'channels-last' });
    const one = gpu.tensor([1, 2, 3], [1, 3]);
    const mods = { bn1: new BatchNorm1d(gpu, 3), bn2: new BatchNorm2d(gpu, 3), bn3: new BatchNorm3d(gpu, 3), bn2c2: new BatchNorm2d(gpu, 2) };
    bad.push(
      ['BatchNorm1d of a 4-D input', () => mods.bn1.forward(x4), 'INVALID_SHAPE'],
      ['BatchNorm2d of a 3-D input', () => mods.bn2.forward(x3), 'INVALID_SHAPE'],
      ['BatchNorm3d of a 4-D input', () => mods.bn3.forward(x4), 'INVALID_SHAPE'],
      ['BatchNorm2d(2) of 3 channels', () => mods.bn2c2.forward(x4), 'CHANNEL_MISMATCH'],
      ['BatchNorm2d(2) of 3 channels-last channels', () => mods.bn2c2.forward(nhwc), 'CHANNEL_MISMATCH'],
      ['forward of a non-tensor', () => mods.bn2.forward([1, 2] as unknown as Tensor), 'INVALID_ARGUMENT'],
      ['forward of another engine\'s tensor', () => new BatchNorm2d(cpu, 3).forward(x4), 'FOREIGN_TENSOR'],
      ['backward before any forward', () => mods.bn2.backward(x4), 'NO_FORWARD'],
      ['momentum 2', () => new BatchNorm2d(gpu, 3, { momentum: 2 }), 'INVALID_MOMENTUM'],
      ['eps -1', () => new BatchNorm2d(gpu, 3, { eps: -1 }), 'INVALID_EPS'],
      ['numFeatures 0', () => new BatchNorm2d(gpu, 0), 'INVALID_ARGUMENT'],
      ['affine a string', () => new BatchNorm2d(gpu, 3, { affine: 'no' as unknown as boolean }), 'INVALID_ARGUMENT'],
      ['no engine', () => new BatchNorm2d(null as unknown as Engine, 3), 'INVALID_ARGUMENT'],
      ['a training batch of one value per channel', () => mods.bn1.forward(one), 'TOO_FEW_VALUES'],
    );
    for (const [name, run, code] of bad) {
      const before = mods.bn1.numBatchesTracked;
      const work = trackGpuWork(gpu);
      try {
        expect(errorCode(run), name).toBe(code);
        expect(work.log, name).toEqual([]);
      } finally {
        work.restore();
      }
      expect(mods.bn1.numBatchesTracked, `${name} leaves the counter`).toBe(before);
    }
    for (const m of Object.values(mods)) m.dispose();
    dispose(x4, x3, nhwc, one);
  });
});

describe('golden-model `module` cases (PyTorch nn.BatchNorm2d over several steps, then eval)', () => {
  const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as { cases: { id: string; kind?: string; op: string; layout?: string; shape: number[] }[] };
  const cases = manifest.cases.filter((c) => c.kind === 'module');
  test('the suite has module cases, with momentum 0.1 and null, both layouts', () => {
    expect(cases.length).toBeGreaterThanOrEqual(4);
    expect(cases.every((c) => MODULE_OPS.has(c.op))).toBe(true);
    expect(new Set(cases.map((c) => (c as unknown as { params: { momentum: unknown } }).params.momentum))).toEqual(new Set([0.1, null]));
  });
  /** A file of case `c` by key, dotted for nested entries, as the runner's loader. */
  const loader = (c: object) => async (key: string) => {
    const name = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c) as string;
    const buf = readFileSync(join(GOLDEN, name));
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  };
  for (const c of cases) {
    test(`${c.id} within ${TOL} on both backends`, async () => {
      await onBoth(async (engine) => {
        const made: Tensor[] = [];
        try {
          const comparisons = await runModuleCase(engine, c, loader(c), (t) => { made.push(t); return t; });
          expect(comparisons.map((k) => k.name)).toContain('eval.output');
          for (const k of comparisons) expectClose(k.actual, k.expected, `${engine.backend} ${c.id} ${k.name}`);
        } finally {
          dispose(...made);
        }
      });
    });
  }
});

type AnyModule = Module & { forward(x: Tensor): Tensor };

interface BackwardCase {
  name: string;
  make: (e: Engine) => AnyModule;
  shape: number[];
  layout?: Layout;
  /** Put the module in eval mode (after a few training batches) before the checked forward. */
  evalMode?: boolean;
}

const BACKWARD_CASES: BackwardCase[] = [
  { name: 'BatchNorm2d training', make: (e) => new BatchNorm2d(e, 5), shape: [3, 5, 4, 3] },
  { name: 'BatchNorm2d training, channels-last, offset input', make: (e) => new BatchNorm2d(e, 6), shape: [2, 3, 5, 6], layout: 'channels-last' },
  { name: 'BatchNorm2d eval (running statistics)', make: (e) => new BatchNorm2d(e, 3), shape: [2, 3, 4, 4], evalMode: true },
  { name: 'BatchNorm2d trackRunningStats false, eval', make: (e) => new BatchNorm2d(e, 3, { trackRunningStats: false }), shape: [2, 3, 4, 4], evalMode: true },
  { name: 'BatchNorm1d [N, C]', make: (e) => new BatchNorm1d(e, 7), shape: [6, 7] },
  { name: 'LayerNorm [4, 6]', make: (e) => new LayerNorm(e, [4, 6]), shape: [3, 4, 6] },
  { name: 'LayerNorm without bias', make: (e) => new LayerNorm(e, 10, { bias: false }), shape: [5, 10] },
  { name: 'RMSNorm', make: (e) => new RMSNorm(e, [12]), shape: [4, 3, 12] },
  { name: 'GroupNorm 3 groups, channels-last', make: (e) => new GroupNorm(e, 3, 6), shape: [2, 4, 3, 6], layout: 'channels-last' },
  { name: 'InstanceNorm2d affine', make: (e) => new InstanceNorm2d(e, 4, { affine: true }), shape: [2, 4, 5, 3] },
  { name: 'InstanceNorm2d tracking, eval', make: (e) => new InstanceNorm2d(e, 4, { affine: true, trackRunningStats: true }), shape: [2, 4, 3, 3], evalMode: true },
];

/** Seeded non-trivial affine parameters for every parameter of `m`. */
function randomizeParams(m: Module, seed: number): Record<string, Float32Array> {
  const normal = normalSampler(mulberry32(seed));
  const dict: Record<string, Float32Array> = {};
  for (const [k, p] of m.namedParameters()) dict[k] = Float32Array.from({ length: p.data.size }, () => (k === 'weight' ? 0.5 + Math.abs(normal()) : normal()));
  m.loadStateDict(dict, { strict: false });
  return dict;
}

/** Forward (after warm-up batches in eval cases) and backward of one case: dx and the parameters' grads. */
async function runBackward(engine: Engine, k: BackwardCase, seed: number) {
  const m = k.make(engine);
  randomizeParams(m, seed);
  const layout = k.layout ?? 'channels-first';
  const dist = k.name.includes('offset') ? 'offset' : 'normal';
  const make = (s: number) => engine.tensor(generate(dist, sizeOf(k.shape), s), k.shape, { layout });
  if (k.evalMode) {
    for (let i = 0; i < 3; i++) {
      const xw = make(seed + 10 + i);
      dispose(xw, m.forward(xw));
    }
    m.eval();
  }
  const x = make(seed);
  const dy = engine.tensor(generate('normal', sizeOf(k.shape), seed + 1), k.shape, { layout });
  const y = m.forward(x);
  const dx = m.backward(dy);
  const out = {
    y: await y.read(), dx: await dx.read(),
    grads: Object.fromEntries(await Promise.all(m.namedParameters().map(async ([n, p]) => [n, await p.grad!.read()] as const))),
  };
  dispose(x, dy, y, dx);
  return { m, out, x: generate(dist, sizeOf(k.shape), seed), dy: generate('normal', sizeOf(k.shape), seed + 1), layout };
}

describe('module backward: dx returned, parameter gradients accumulated into .grad', () => {
  for (const [i, k] of BACKWARD_CASES.entries()) {
    test(`${k.name}: GPU equals CPU (y, dx, every .grad)`, async () => {
      const g = await withValidation(gpu, () => runBackward(gpu, k, 40 + i));
      const c = await runBackward(cpu, k, 40 + i);
      const tol = k.name.includes('offset') ? 1e-4 : TOL;
      expectClose(g.out.y, c.out.y, 'y', tol);
      expectClose(g.out.dx, c.out.dx, 'dx', tol);
      expect(Object.keys(g.out.grads)).toEqual(Object.keys(c.out.grads));
      for (const n of Object.keys(c.out.grads)) expectClose(g.out.grads[n], c.out.grads[n], `grad of ${n}`, tol);
      g.m.dispose();
      c.m.dispose();
    });
  }

  test('gradients accumulate over backward calls until zeroGrad; requiresGrad false leaves a parameter alone', async () => {
    await onBoth(async (engine) => {
      const m = new BatchNorm2d(engine, 3);
      randomizeParams(m, 3);
      m.bias!.requiresGrad = false;
      const x = engine.tensor(generate('normal', 2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
      const dy = engine.tensor(generate('normal', 2 * 3 * 4 * 4, 2), [2, 3, 4, 4]);
      const once: Float32Array[] = [];
      for (let pass = 0; pass < 3; pass++) {
        const y = m.forward(x);
        const dx = m.backward(dy);
        if (pass === 0) once.push(await dx.read(), await m.weight!.grad!.read());
        else expectClose(await dx.read(), once[0], `dx of pass ${pass}`);
        expectClose(await m.weight!.grad!.read(), once[1].map((v) => v * (pass + 1)), `weight.grad after ${pass + 1} passes`);
        expect(m.bias!.grad).toBeNull();
        dispose(y, dx);
      }
      // backward may run again on the same forward (its saved statistics are kept until the next one).
      dispose(m.backward(dy));
      expectClose(await m.weight!.grad!.read(), once[1].map((v) => v * 4), 'weight.grad after a second backward of one forward');
      m.zeroGrad();
      expect(m.weight!.grad).toBeNull();
      dispose(x, dy);
      m.dispose();
    });
  });

  test('eval-mode BatchNorm backward is dy · weight / sqrt(running_var + eps)', async () => {
    await onBoth(async (engine) => {
      const m = new BatchNorm2d(engine, 2, { eps: 1e-3 });
      m.loadStateDict({ weight: [2, -0.5], bias: [1, 1], running_mean: [3, -1], running_var: [4, 0.25], num_batches_tracked: 9 });
      m.eval();
      const dyData = generate('normal', 2 * 2 * 3 * 3, 9);
      const x = engine.tensor(generate('normal', 2 * 2 * 3 * 3, 8), [2, 2, 3, 3]);
      const dy = engine.tensor(dyData, [2, 2, 3, 3]);
      dispose(m.forward(x));
      const dx = m.backward(dy);
      const scale = [2 / Math.sqrt(4.001), -0.5 / Math.sqrt(0.251)];
      expectClose(await dx.read(), Float64Array.from(dyData, (v, i) => v * scale[Math.floor(i / 9) % 2]), 'dx');
      expectClose(await m.bias!.grad!.read(), [0, 1].map((c) => dyData.reduce((s, v, i) => (Math.floor(i / 9) % 2 === c ? s + v : s), 0)), 'bias.grad');
      dispose(x, dy, dx);
      m.dispose();
    });
  });

  test('finite differences of the loss Σ y·r (CPU backend) agree with the module gradients on random shapes', async () => {
    const random = mulberry32(2024);
    const pick = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    for (let trial = 0; trial < 3; trial++) {
      const n = pick(2, 3);
      const c = pick(2, 4);
      const h = pick(2, 3);
      const layout: Layout = trial % 2 ? 'channels-last' : 'channels-first';
      const shape = layout === 'channels-last' ? [n, h, 3, c] : [n, c, h, 3];
      const kinds: AnyModule[] = [
        new BatchNorm2d(cpu, c), new GroupNorm(cpu, 1, c), new LayerNorm(cpu, shape.slice(2)), new RMSNorm(cpu, shape.slice(3)),
        new InstanceNorm2d(cpu, c, { affine: true }),
      ];
      for (const m of kinds) {
        const params = randomizeParams(m, trial);
        const xData = generate('normal', sizeOf(shape), 70 + trial);
        const r = generate('normal', sizeOf(shape), 80 + trial);
        const loss = async (xv: Float32Array) => {
          const xt = cpu.tensor(xv, shape, { layout });
          const y = m.forward(xt);
          const v = await y.read();
          dispose(xt, y);
          return v.reduce((s, yi, i) => s + yi * r[i], 0);
        };
        const x = cpu.tensor(xData, shape, { layout });
        const dyT = cpu.tensor(r, shape, { layout });
        dispose(m.forward(x));
        const dx = await m.backward(dyT).read();
        const dw = await m.weight!.grad!.read();
        const step = 3e-3;
        const fdX = new Float64Array(xData.length);
        for (let i = 0; i < xData.length; i++) {
          const at = (d: number) => { const v = xData.slice(); v[i] += d; return v; };
          fdX[i] = ((await loss(at(step))) - (await loss(at(-step)))) / (Math.fround(xData[i] + step) - Math.fround(xData[i] - step));
        }
        const fdW = new Float64Array(dw.length);
        for (let i = 0; i < dw.length; i++) {
          const w = params.weight;
          const set = async (d: number) => { const v = w.slice(); v[i] += d; m.loadStateDict({ weight: v }, { strict: false }); return loss(xData); };
          fdW[i] = ((await set(step)) - (await set(-step))) / (Math.fround(w[i] + step) - Math.fround(w[i] - step));
        }
        const name = `${m.constructor.name} [${shape}] ${layout}`;
        expect(scaledError(dx, fdX), `${name} dx: ${worstElement(dx, fdX)}`).toBeLessThanOrEqual(1e-3);
        expect(scaledError(dw, fdW), `${name} dweight: ${worstElement(dw, fdW)}`).toBeLessThanOrEqual(1e-3);
        dispose(x, dyT);
        m.dispose();
      }
    }
  });
});

describe('state dicts keyed as PyTorch names them', () => {
  test('each module lists the keys PyTorch\'s state_dict() has, in its order', async () => {
    const keys = async (m: Module) => { const k = Object.keys(await m.stateDict()); m.dispose(); return k; };
    expect(await keys(new BatchNorm2d(cpu, 2))).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(await keys(new BatchNorm2d(cpu, 2, { affine: false, trackRunningStats: false }))).toEqual([]);
    expect(await keys(new LayerNorm(cpu, [2, 3]))).toEqual(['weight', 'bias']);
    expect(await keys(new LayerNorm(cpu, 3, { bias: false }))).toEqual(['weight']);
    expect(await keys(new LayerNorm(cpu, 3, { elementwiseAffine: false }))).toEqual([]);
    expect(await keys(new RMSNorm(cpu, 3))).toEqual(['weight']);
    expect(await keys(new GroupNorm(cpu, 2, 4))).toEqual(['weight', 'bias']);
    expect(await keys(new InstanceNorm2d(cpu, 3))).toEqual([]);
    expect(await keys(new InstanceNorm2d(cpu, 3, { affine: true, trackRunningStats: true }))).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
  });

  test('a state dict round-trips, and PyTorch\'s tolist() export (nested lists) loads directly', async () => {
    await onBoth(async (engine) => {
      const a = new BatchNorm2d(engine, 3, { momentum: null });
      for (let s = 0; s < 3; s++) {
        const x = engine.tensor(generate('normal', 2 * 3 * 2 * 2, s), [2, 3, 2, 2]);
        dispose(x, a.forward(x));
      }
      const state = await a.stateDict();
      expect(state.num_batches_tracked).toBe(3);
      const b = new BatchNorm2d(engine, 3, { momentum: null });
      b.loadStateDict(state);
      expect(await b.stateDict()).toEqual(state);
      expect(b.numBatchesTracked).toBe(3);
      a.dispose();
      b.dispose();

      const ln = new LayerNorm(engine, [2, 3]);
      ln.loadStateDict({ weight: [[1, 2, 3], [4, 5, 6]], bias: new Float64Array([0.5, 0, 0, 0, 0, -0.5]) });
      const s = await ln.stateDict();
      expect(Array.from(s.weight as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(Array.from(s.bias as Float32Array)).toEqual([0.5, 0, 0, 0, 0, -0.5]);
      expect(ln.weight!.data.shape).toEqual([2, 3]);
      ln.dispose();
    });
  });

  test('bad state dicts throw typed errors naming the entry, before any GPU work, and change nothing', async () => {
    const m = new BatchNorm2d(gpu, 2);
    const good = { weight: [1, 2], bias: [0, 0], running_mean: [0, 0], running_var: [1, 1], num_batches_tracked: 0 };
    const before = await m.stateDict();
    const cases: [string, Record<string, unknown>, string, string, boolean?][] = [
      ['a missing key', { ...good, running_var: undefined }, 'STATE_DICT_MISMATCH', 'running_var'],
      ['an unexpected key', { ...good, extra: [1] }, 'STATE_DICT_MISMATCH', 'extra'],
      ['a wrong length', { ...good, running_mean: [0, 0, 0] }, 'PARAM_LENGTH_MISMATCH', 'running_mean'],
      ['a wrong length, non-strict', { weight: [1] }, 'PARAM_LENGTH_MISMATCH', 'weight', false],
      ['a nested list of the wrong shape', { ...good, weight: [[1], [2]] }, 'PARAM_LENGTH_MISMATCH', 'weight'],
      ['a string value', { ...good, bias: [0, '1'] }, 'INVALID_DATA', 'bias[1]'],
      ['an Int32Array', { ...good, bias: new Int32Array(2) }, 'INVALID_DATA', 'bias'],
      ['a string entry', { ...good, bias: 'zeros' }, 'STATE_DICT_MISMATCH', 'bias'],
      ['a negative counter', { ...good, num_batches_tracked: -1 }, 'STATE_DICT_MISMATCH', 'num_batches_tracked'],
      ['a fractional counter', { ...good, num_batches_tracked: 1.5 }, 'STATE_DICT_MISMATCH', 'num_batches_tracked'],
    ];
    for (const [name, dict, code, names, strict = true] of cases) {
      for (const k of Object.keys(dict)) if (dict[k] === undefined) delete dict[k];
      const work = trackGpuWork(gpu);
      let message = '';
      try {
        expect(errorCode(() => { try { m.loadStateDict(dict, { strict }); } catch (e) { message = String(e); throw e; } }), name).toBe(code);
        expect(work.log, name).toEqual([]);
      } finally {
        work.restore();
      }
      expect(message, name).toContain(names);
    }
    expect(errorCode(() => m.loadStateDict(null as unknown as Record<string, unknown>))).toBe('STATE_DICT_MISMATCH');
    expect(await m.stateDict()).toEqual(before);
    // Non-strict: missing keys are skipped, bigint counters accepted.
    m.loadStateDict({ running_mean: [5, 6], num_batches_tracked: 7n }, { strict: false });
    const after = await m.stateDict();
    expect(Array.from(after.running_mean as Float32Array)).toEqual([5, 6]);
    expect(after.num_batches_tracked).toBe(7);
    expect(Array.from(after.weight as Float32Array)).toEqual([1, 1]);
    m.dispose();
  });

  test('loadStateDict drops the record of the last forward: backward then throws NO_FORWARD', () => {
    const m = new LayerNorm(cpu, 4);
    const x = cpu.tensor([1, 2, 3, 5], [1, 4]);
    dispose(m.forward(x));
    m.loadStateDict({ weight: [1, 1, 1, 1] }, { strict: false });
    expect(errorCode(() => m.backward(x))).toBe('NO_FORWARD');
    dispose(x);
    m.dispose();
  });
});

describe('InstanceNorm: PyTorch defaults (no affine, no running statistics) and the tracking option', () => {
  test('default InstanceNorm2d equals engine.instanceNorm in both modes', async () => {
    await onBoth(async (engine) => {
      const m = new InstanceNorm2d(engine, 3);
      expect([m.affine, m.trackRunningStats, m.weight, m.runningMean]).toEqual([false, false, null, null]);
      const x = engine.tensor(generate('offset', 2 * 3 * 4 * 5, 3), [2, 4, 5, 3], { layout: 'channels-last' });
      const ref = await engine.instanceNorm(x).read();
      expectClose(await m.forward(x).read(), ref, 'train mode', 1e-4);
      expectClose(await m.eval().forward(x).read(), ref, 'eval mode', 1e-4);
      dispose(x);
      m.dispose();
    });
  });

  for (const layout of ['channels-first', 'channels-last'] as const) {
    test(`trackRunningStats: batch average of instance statistics, then eval by them (${layout})`, async () => {
      await onBoth(async (engine) => {
        const [n, c, h, w] = [3, 2, 4, 3];
        const shape = layout === 'channels-last' ? [n, h, w, c] : [n, c, h, w];
        const m = new InstanceNorm2d(engine, c, { trackRunningStats: true, momentum: 0.2 });
        let rm = [0, 0];
        let rv = [1, 1];
        for (let step = 0; step < 3; step++) {
          const data = generate('normal', n * c * h * w, 60 + step).map((v) => 2 * v + step);
          const x = engine.tensor(data, shape, { layout });
          dispose(x, m.forward(x));
          const ch = channelIndex(shape, layout);
          const inst = (b: number, k: number) => {
            const v = Array.from(data).filter((_, i) => ch(i) === k && Math.floor(i / (c * h * w)) === b);
            const mean = v.reduce((s, a) => s + a, 0) / v.length;
            return { mean, var: v.reduce((s, a) => s + (a - mean) ** 2, 0) / (v.length - 1) };
          };
          const avg = (k: number, key: 'mean' | 'var') => Array.from({ length: n }, (_, b) => inst(b, k)[key]).reduce((s, a) => s + a, 0) / n;
          rm = rm.map((v, k) => 0.8 * v + 0.2 * avg(k, 'mean'));
          rv = rv.map((v, k) => 0.8 * v + 0.2 * avg(k, 'var'));
          expectClose(await m.runningMean!.read(), rm, `running_mean after step ${step}`);
          expectClose(await m.runningVar!.read(), rv, `running_var after step ${step}`);
        }
        expect(m.numBatchesTracked).toBe(0); // PyTorch's InstanceNorm never advances it
        m.eval();
        const data = generate('normal', n * c * h * w, 99);
        const x = engine.tensor(data, shape, { layout });
        expectClose(await m.forward(x).read(), applyChannels(data, shape, layout, rm, rv, m.eps), 'eval output');
        dispose(x);
        m.dispose();
      });
    });
  }
});

describe('SGD and module lifetime', () => {
  test('a few SGD steps of a BatchNorm layer lower a squared loss, each step data − lr · grad', async () => {
    await onBoth(async (engine) => {
      const m = new BatchNorm2d(engine, 2);
      const opt = new SGD(m.parameters(), { lr: 0.1 });
      const shape = [4, 2, 3, 3];
      const x = engine.tensor(generate('normal', sizeOf(shape), 1), shape);
      // Channel 0 should come out -1, channel 1 +2: the bias has to learn it.
      const target = Float32Array.from({ length: sizeOf(shape) }, (_, i) => (Math.floor(i / 9) % 2 ? 2 : -1));
      const losses: number[] = [];
      for (let step = 0; step < 5; step++) {
        opt.zeroGrad();
        const y = m.forward(x);
        const yv = await y.read();
        losses.push(yv.reduce((s, v, i) => s + 0.5 * (v - target[i]) ** 2, 0) / yv.length);
        const dy = engine.tensor(yv.map((v, i) => (v - target[i]) / yv.length), shape);
        dispose(y, m.backward(dy), dy);
        const w = await m.weight!.data.read();
        const g = await m.weight!.grad!.read();
        opt.step();
        expectClose(await m.weight!.data.read(), w.map((v, i) => v - 0.1 * g[i]), `weight after step ${step}`);
      }
      for (let i = 1; i < losses.length; i++) expect(losses[i], `loss ${i} < loss ${i - 1}`).toBeLessThan(losses[i - 1]);
      dispose(x);
      m.dispose();
    });
  });

  test('a whole training step inside engine.tidy keeps the module state (grads, stepped parameters, running statistics) and frees the rest', async () => {
    await onBoth(async (engine) => {
      const shape = [3, 2, 4, 4];
      const x = engine.tensor(generate('offset', sizeOf(shape), 4), shape);
      const bn = new BatchNorm2d(engine, 2);
      const inorm = new InstanceNorm2d(engine, 2, { affine: true, trackRunningStats: true });
      const opt = new SGD([...bn.parameters(), ...inorm.parameters()], { lr: 0.5, weightDecay: 0.1 });
      const base = engine.memory().liveTensors;
      const step = () => engine.tidy(() => {
        const y = inorm.forward(bn.forward(x));
        // Loss Σ y²/2: dy = y.
        bn.backward(inorm.backward(y));
        opt.step();
      });
      step();
      const grads = await Promise.all([...bn.parameters(), ...inorm.parameters()].map((p) => p.grad!.read()));
      const weights = await Promise.all([...bn.parameters(), ...inorm.parameters()].map((p) => p.data.read()));
      const running = await Promise.all([bn, inorm].map((m) => m.stateDict()));
      for (const g of grads) expect(g.every(Number.isFinite)).toBe(true);
      // The module state made in the step survives it: the gradients (one per parameter) only.
      expect(engine.memory().liveTensors).toBe(base + grads.length);
      step();
      // Gradients accumulate in place (no new tensors), parameters move by (1 − lr·wd)·w − lr·g.
      expect(engine.memory().liveTensors).toBe(base + grads.length);
      const after = await Promise.all([...bn.parameters(), ...inorm.parameters()].map((p) => p.data.read()));
      const grads2 = await Promise.all([...bn.parameters(), ...inorm.parameters()].map((p) => p.grad!.read()));
      after.forEach((w, k) => expectClose(w, weights[k].map((v, i) => (1 - 0.05) * v - 0.5 * grads2[k][i]), `parameter ${k} after step 2`));
      const running2 = await Promise.all([bn, inorm].map((m) => m.stateDict()));
      expect(running2[0].num_batches_tracked).toBe(2);
      expect(running2[1].running_mean).not.toEqual(running[1].running_mean);
      dispose(x);
      bn.dispose();
      inorm.dispose();
    });
  });

  test('engine.keep takes a tensor out of the open tidy scopes', async () => {
    await onBoth(async (engine) => {
      let kept: Tensor | undefined;
      let dropped: Tensor | undefined;
      engine.tidy(() => engine.tidy(() => {
        kept = engine.keep(engine.tensor([1, 2], [2]));
        dropped = engine.tensor([3], [1]);
      }));
      expect(dropped!.disposed).toBe(true);
      expect(kept!.disposed).toBe(false);
      expect(Array.from(await kept!.read())).toEqual([1, 2]);
      kept!.dispose();
    });
  });

  test('dispose frees every tensor a module made: parameters, grads, buffers, saved statistics', async () => {
    await onBoth(async (engine) => {
      const base = engine.memory().liveTensors;
      const x = engine.tensor(generate('normal', 2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
      const m = new InstanceNorm2d(engine, 3, { affine: true, trackRunningStats: true });
      const y = m.forward(x);
      const dx = m.backward(y);
      dispose(x, y, dx);
      m.dispose();
      expect(engine.memory().liveTensors).toBe(base);
    });
  });
});
