/**
 * Fused epilogues and float16 on the WebGPU backend, against the float64 CPU backend: every
 * normalization op, both layouts, both dtypes (and mixed input/output dtypes), residual with
 * and without `returnSum`, every activation, on the three kernel families (`parallel`,
 * `serial`, `auto`), over random shapes from fast-check plus named hard cases (offset 1e4,
 * constant groups, tiny values, odd counts, NaN/Inf, half overflow). The run prints its seed;
 * replay with EPILOGUE_SEED=<seed>.
 *
 * TOLERANCE: max scaled error |gpu − cpu| / (1 + |cpu|) ≤ 1e-5 for float32 outputs, and
 * ≤ 9.8e-4 (one half ulp at |e| ~ 1: the two backends round float32 and float64 results to
 * half) for float16 outputs; sums are equal exactly (the same float32 add, the same rounding).
 * Also: validation errors are typed and thrown before any GPU work, and `prepare` compiles the
 * epilogue and float16 pipelines (calls of other shapes then compile none).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, NormGpuError, Tensor, type Activation, type DType, type Engine, type Layout, type NormWithSum } from '../src/index';
import { cachedPipelineCount } from '../src/gpu/pipelines';
import { generate, makeGpuEngine, scaledError, sizeOf, trackGpuWork, withValidation, worstElement, type Distribution } from './support/gpu';

const TOL = { float32: 1e-5, float16: 9.8e-4 } as const;
const ACTIVATIONS: readonly Activation[] = ['relu', 'silu', 'gelu', 'gelu_tanh'];
type Op = 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';
const OPS: readonly Op[] = ['batchNorm', 'layerNorm', 'rmsNorm', 'instanceNorm', 'groupNorm'];
type Family = 'parallel' | 'serial' | 'auto';
const FAMILIES: readonly Family[] = ['parallel', 'serial', 'auto'];

interface Case {
  op: Op;
  shape: number[];
  layout: Layout;
  dtype: DType;
  outputDtype: DType;
  residual: boolean;
  returnSum: boolean;
  activation?: Activation;
  dist: Distribution;
  affine: boolean;
  training: boolean;
  numGroups: number;
  normDims: number;
  seed: number;
  /** Extra values written into x: NaN, ±Inf, half overflow. */
  specials: boolean;
}

const channels = (c: Case) => (c.layout === 'channels-first' ? c.shape[1] : c.shape[c.shape.length - 1]);

function describeCase(c: Case): string {
  const epi = [c.residual && (c.returnSum ? 'residual+sum' : 'residual'), c.activation].filter(Boolean).join('+') || 'plain';
  return `${c.op} [${c.shape}] ${c.layout} ${c.dtype}->${c.outputDtype} ${epi} ${c.dist}${c.training ? ' training' : ''}${c.specials ? ' specials' : ''}`;
}

function inputs(c: Case) {
  const n = sizeOf(c.shape);
  const x = generate(c.dist, n, c.seed);
  if (c.specials) {
    x[0] = NaN;
    if (n > 3) x[Math.floor(n / 2)] = Infinity;
    if (n > 5) x[n - 1] = c.dtype === 'float16' ? 70000 : -Infinity;
  }
  const residual = generate('normal', n, c.seed + 1);
  const k = c.op === 'layerNorm' || c.op === 'rmsNorm' ? sizeOf(c.shape.slice(c.shape.length - c.normDims)) : channels(c);
  const weight = Float32Array.from(generate('normal', k, c.seed + 2), (v) => 1 + 0.5 * v);
  const bias = generate('normal', k, c.seed + 3);
  return { x, residual, weight, bias, k };
}

/** Runs one case; returns the outputs as float32 values. */
async function run(engine: Engine, c: Case): Promise<Record<string, Float32Array>> {
  const d = inputs(c);
  const made: Tensor[] = [];
  const t = (data: Float32Array, shape: number[], dtype: DType = c.dtype) => {
    const tensor = engine.tensor(data, shape, { layout: c.layout, dtype });
    made.push(tensor);
    return tensor;
  };
  try {
    const x = t(d.x, c.shape);
    const common = {
      ...(c.residual ? { residual: t(d.residual, c.shape) } : {}),
      ...(c.returnSum ? { returnSum: true as const } : {}),
      ...(c.activation ? { activation: c.activation } : {}),
      outputDtype: c.outputDtype,
    };
    const affine = c.affine ? { weight: d.weight, ...(c.op === 'rmsNorm' ? {} : { bias: d.bias }) } : {};
    const normalizedShape = c.shape.slice(c.shape.length - c.normDims);
    let running: { runningMean: Tensor; runningVar: Tensor } | undefined;
    let out: Tensor | NormWithSum;
    switch (c.op) {
      case 'batchNorm': {
        running = {
          runningMean: t(generate('normal', d.k, c.seed + 4), [d.k], 'float32'),
          runningVar: t(Float32Array.from(generate('normal', d.k, c.seed + 5), (v) => 0.5 + v * v), [d.k], 'float32'),
        };
        out = engine.batchNorm(x, { ...common, ...affine, ...running, training: c.training, momentum: 0.1 });
        break;
      }
      case 'layerNorm': out = engine.layerNorm(x, { ...common, ...affine, normalizedShape }); break;
      case 'rmsNorm': out = engine.rmsNorm(x, { ...common, ...affine, normalizedShape }); break;
      case 'instanceNorm': out = engine.instanceNorm(x, { ...common, ...affine }); break;
      case 'groupNorm': out = engine.groupNorm(x, { ...common, ...affine, numGroups: c.numGroups }); break;
    }
    const result: Record<string, Float32Array> = {};
    // The overloads type a call by its options' static type; returnSum is decided at run time here.
    const r = out as Tensor | NormWithSum;
    if (!(r instanceof Tensor)) {
      made.push(r.y, r.sum);
      expect(r.sum.dtype).toBe(c.dtype);
      expect(r.y.dtype).toBe(c.outputDtype);
      result.y = await r.y.read();
      result.sum = await r.sum.read();
    } else {
      made.push(out);
      expect(out.dtype).toBe(c.outputDtype);
      result.y = await out.read();
    }
    if (running && c.training) {
      result.runningMean = await running.runningMean.read();
      result.runningVar = await running.runningVar.read();
    }
    return result;
  } finally {
    for (const m of made) m.dispose();
  }
}

let cpu: Engine;
const gpu = {} as Record<Family, Engine>;

beforeAll(async () => {
  cpu = await createEngine({ backend: 'cpu' });
  for (const f of FAMILIES) gpu[f] = await makeGpuEngine({ kernels: f });
});

afterAll(() => {
  cpu?.dispose();
  for (const f of FAMILIES) gpu[f]?.dispose();
});

async function check(c: Case, families: readonly Family[] = FAMILIES): Promise<void> {
  const expected = await run(cpu, c);
  for (const f of families) {
    const actual = await withValidation(gpu[f], () => run(gpu[f], c));
    for (const [name, e] of Object.entries(expected)) {
      const a = actual[name];
      const tol = name === 'sum' ? 0 : name === 'y' ? TOL[c.outputDtype] : TOL.float32;
      const err = scaledError(a, e);
      expect(err, `${describeCase(c)} [${f}] ${name}: ${worstElement(a, e)}`).toBeLessThanOrEqual(tol);
    }
  }
}

const base: Case = {
  op: 'layerNorm', shape: [4, 6], layout: 'channels-first', dtype: 'float32', outputDtype: 'float32', residual: false,
  returnSum: false, dist: 'normal', affine: true, training: false, numGroups: 1, normDims: 1, seed: 1, specials: false,
};

describe('named cases', () => {
  const named: [string, Partial<Case>][] = [
    ['LayerNorm + residual, sum returned', { shape: [8, 768], residual: true, returnSum: true }],
    ['RMSNorm + residual float16', { op: 'rmsNorm', shape: [6, 100], residual: true, returnSum: true, dtype: 'float16', outputDtype: 'float16' }],
    ['GroupNorm + SiLU channels-last', { op: 'groupNorm', shape: [2, 5, 7, 12], layout: 'channels-last', numGroups: 4, activation: 'silu' }],
    ['GroupNorm + SiLU float16 channels-first', { op: 'groupNorm', shape: [2, 12, 5, 7], numGroups: 3, activation: 'silu', dtype: 'float16', outputDtype: 'float16' }],
    ['BatchNorm eval + ReLU float16 odd count', { op: 'batchNorm', shape: [3, 5, 3, 3], activation: 'relu', dtype: 'float16', outputDtype: 'float16' }],
    ['BatchNorm training + residual float16 channels-last', { op: 'batchNorm', shape: [2, 3, 5, 3], layout: 'channels-last', training: true, residual: true, returnSum: true, dtype: 'float16', outputDtype: 'float16' }],
    ['InstanceNorm + gelu, float16 in, float32 out', { op: 'instanceNorm', shape: [2, 3, 5, 5], activation: 'gelu', dtype: 'float16', outputDtype: 'float32' }],
    ['LayerNorm gelu_tanh offset 1e4 + residual', { shape: [5, 512], dist: 'offset', residual: true, returnSum: true, activation: 'gelu_tanh' }],
    ['LayerNorm float32 in, float16 out, odd width', { shape: [3, 7], outputDtype: 'float16' }],
    ['constant groups float16', { op: 'groupNorm', shape: [2, 4, 3, 3], numGroups: 2, dist: 'constant', dtype: 'float16', outputDtype: 'float16', activation: 'gelu' }],
    ['tiny values float32 + residual', { op: 'instanceNorm', shape: [2, 3, 4, 4], dist: 'tiny', residual: true }],
    ['NaN, Inf and half overflow', { op: 'layerNorm', shape: [4, 10], specials: true, dtype: 'float16', outputDtype: 'float16', residual: true, returnSum: true, activation: 'relu' }],
    ['NaN and Inf float32 silu', { op: 'groupNorm', shape: [2, 6, 3, 3], numGroups: 3, specials: true, activation: 'silu' }],
    ['one-element rows float16', { op: 'rmsNorm', shape: [5, 1], dtype: 'float16', outputDtype: 'float16' }],
  ];
  for (const [name, over] of named) {
    test(name, async () => check({ ...base, ...over }));
  }
});

const SEED = process.env.EPILOGUE_SEED === 'random' ? Date.now() % 2 ** 31 : Number(process.env.EPILOGUE_SEED ?? 20260309);
const RUNS = Number(process.env.EPILOGUE_RUNS ?? 40);

const caseArb: fc.Arbitrary<Case> = fc.record({
  op: fc.constantFrom(...OPS),
  rank: fc.integer({ min: 2, max: 4 }),
  dims: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 4, maxLength: 4 }),
  layout: fc.constantFrom<Layout>('channels-first', 'channels-last'),
  dtype: fc.constantFrom<DType>('float32', 'float16'),
  mixed: fc.boolean(),
  residual: fc.boolean(),
  returnSum: fc.boolean(),
  activation: fc.option(fc.constantFrom(...ACTIVATIONS), { nil: undefined }),
  dist: fc.constantFrom<Distribution>('normal', 'offset', 'constant', 'tiny', 'mixed'),
  affine: fc.boolean(),
  training: fc.boolean(),
  groupsPick: fc.integer({ min: 0, max: 8 }),
  normDims: fc.integer({ min: 1, max: 2 }),
  seed: fc.integer({ min: 1, max: 1e6 }),
}).map((r) => {
  const rank = r.op === 'instanceNorm' ? Math.max(3, r.rank) : r.rank;
  const shape = r.dims.slice(0, rank).map((d, i) => (i < 2 ? d + 1 : d));
  // InstanceNorm needs more than one spatial element (else TOO_FEW_VALUES on both backends).
  if (r.op === 'instanceNorm') shape[r.layout === 'channels-first' ? 2 : 1] += 1;
  const c = r.layout === 'channels-first' ? shape[1] : shape[rank - 1];
  const divisors = Array.from({ length: c }, (_, i) => i + 1).filter((g) => c % g === 0);
  const outputDtype: DType = r.mixed ? (r.dtype === 'float32' ? 'float16' : 'float32') : r.dtype;
  return {
    op: r.op, shape, layout: r.op === 'layerNorm' || r.op === 'rmsNorm' ? 'channels-first' : r.layout, dtype: r.dtype, outputDtype,
    residual: r.residual, returnSum: r.residual && r.returnSum, activation: r.activation, dist: r.dist, affine: r.affine,
    training: r.op === 'batchNorm' && r.training, numGroups: divisors[r.groupsPick % divisors.length], normDims: Math.min(r.normDims, rank),
    seed: r.seed, specials: false,
  };
});

describe('random cases', () => {
  test(`GPU matches the CPU backend (seed ${SEED}, ${RUNS} runs)`, async () => {
    console.log(`[epilogues] seed=${SEED} runs=${RUNS}`);
    await fc.assert(fc.asyncProperty(caseArb, async (c) => {
      await check(c);
    }), { seed: SEED, numRuns: RUNS });
  }, 600_000);
});

test('prepare compiles the epilogue and float16 pipelines, and other shapes make none', async () => {
  const engine = await makeGpuEngine();
  try {
    const options = { activation: 'gelu' as const, dtype: 'float16' as const };
    const r = engine.tensor(new Float32Array(60), [6, 10], { dtype: 'float16' });
    await engine.prepare('layerNorm', [6, 10], { ...options, normalizedShape: [10], residual: r, returnSum: true });
    const prepared = cachedPipelineCount(engine.device!);
    expect(prepared).toBeGreaterThan(0);
    await withValidation(engine, async () => {
      for (const rows of [6, 4, 12]) {
        const x = engine.tensor(generate('normal', rows * 10, rows), [rows, 10], { dtype: 'float16' });
        const res = engine.tensor(generate('normal', rows * 10, rows + 1), [rows, 10], { dtype: 'float16' });
        const { y, sum } = engine.layerNorm(x, { normalizedShape: [10], residual: res, returnSum: true, activation: 'gelu' });
        await y.read();
        for (const t of [x, res, y, sum]) t.dispose();
      }
    });
    expect(cachedPipelineCount(engine.device!)).toBe(prepared);
    r.dispose();
  } finally {
    engine.dispose();
  }
});

describe('validation', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return e instanceof NormGpuError ? e.code : `untyped ${String(e)}`;
    }
    return undefined;
  };

  test('bad epilogues and dtypes are typed errors before any GPU work', async () => {
    const engine = gpu.auto;
    const x = engine.tensor(new Float32Array(24), [4, 6]);
    const xh = engine.tensor(new Float32Array(24), [4, 6], { dtype: 'float16' });
    const wrongShape = engine.tensor(new Float32Array(24), [6, 4]);
    const wrongLayout = engine.tensor(new Float32Array(24), [4, 6], { layout: 'channels-last' });
    const weightHalf = engine.tensor(new Float32Array(6), [6], { dtype: 'float16' });
    const buffer = engine.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    engine.flush();
    const ln = { normalizedShape: [6] };
    const work = trackGpuWork(engine);
    try {
      expect(code(() => engine.layerNorm(x, { ...ln, residual: wrongShape }))).toBe('RESIDUAL_MISMATCH');
      expect(code(() => engine.layerNorm(x, { ...ln, residual: xh }))).toBe('RESIDUAL_MISMATCH');
      expect(code(() => engine.groupNorm(wrongLayout, { numGroups: 2, residual: engine.tensor(new Float32Array(24), [4, 6]) }))).toBe('RESIDUAL_MISMATCH');
      expect(code(() => engine.layerNorm(x, { ...ln, residual: new Float32Array(24) as never }))).toBe('INVALID_ARGUMENT');
      expect(code(() => engine.layerNorm(x, { ...ln, activation: 'tanh' as never }))).toBe('INVALID_ARGUMENT');
      expect(code(() => engine.layerNorm(x, { ...ln, returnSum: true }))).toBe('INVALID_ARGUMENT');
      expect(code(() => engine.layerNorm(x, { ...ln, outputDtype: 'bfloat16' as never }))).toBe('INVALID_DTYPE');
      expect(code(() => engine.layerNorm(x, { ...ln, weight: weightHalf }))).toBe('INVALID_DTYPE');
      expect(code(() => engine.tensor(new Float32Array(5), [2, 3], { dtype: 'float16' }))).toBe('DATA_LENGTH_MISMATCH');
      expect(code(() => engine.tensor(new Uint16Array(5), [2, 3], { dtype: 'float16' }))).toBe('DATA_LENGTH_MISMATCH');
      expect(code(() => engine.tensor(new Uint16Array(6), [2, 3]))).toBe('INVALID_DATA');
      expect(code(() => engine.tensor(new Float32Array(6), [2, 3], { dtype: 'int8' as never }))).toBe('INVALID_DTYPE');
      expect(code(() => engine.fromGPUBuffer(buffer, [3, 3], { dtype: 'float16' }))).toBe('DATA_LENGTH_MISMATCH');
      expect(code(() => engine.moments(x, { axes: [1], outputDtype: 'float64' as never }))).toBe('INVALID_DTYPE');
      await expect(x.readBits()).rejects.toMatchObject({ code: 'INVALID_DTYPE' });
      // The wrong-layout residual above was made inside the tracked window: count only op work.
      expect(work.log.filter((l) => !l.includes('tensor') && !l.includes('writeBuffer'))).toEqual([]);
    } finally {
      work.restore();
      buffer.destroy();
      for (const t of [x, xh, wrongShape, wrongLayout, weightHalf]) t.dispose();
    }
  });
});
