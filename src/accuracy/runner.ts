/**
 * Golden-case accuracy runner. It runs each case of a golden manifest (see
 * `test/golden/manifest.json`) on an engine and compares the results with the float64
 * references. It uses no Node or DOM APIs, so the same code runs in Node (the accuracy
 * CLI) and in a browser page (the Chromium test); the caller supplies file loading.
 */
import type { DType, Engine, EpilogueOptions, Layout, Tensor } from '../index';
import { PREPROCESSING_OPS, runPreprocessingOp } from './preprocessing-ops';
import { gradTolerance, isGradCase, runGradCase } from './grad-cases';
import { modelCase } from './model-cases';
import { fromHalfBits } from '../half';
import type { NormWithSum } from '../api/engine';

/** One case of a golden manifest, as written by the generator (snake_case params). */
export interface GoldenCase {
  id: string;
  op: string;
  /** `NCHW`, `NHWC`, `ROWS`, `HWC->CHW`; absent for 2-D table ops. */
  layout?: string;
  /** Shape in storage order (NHWC cases are `[N, H, W, C]`). */
  shape: number[];
  /** Input distribution: `normal`, `offset` (large mean, small spread), `pixels`. */
  dist?: string;
  params: Record<string, unknown>;
  /** Other keys name the case's data files (`input`, `output`, `weight`, ...). */
  [file: string]: unknown;
}

/** A golden manifest: the cases plus descriptive fields the runner does not need. */
export interface GoldenManifest {
  cases: GoldenCase[];
}

/** Outcome of one golden case. */
export interface CaseResult {
  id: string;
  op: string;
  layout: string | null;
  /** Max over all compared values of |actual − expected|; null when nothing was compared. */
  maxAbsError: number | null;
  /** Max over all compared values of |actual − expected| / (1 + |expected|); null as above. */
  maxScaledError: number | null;
  /** Bound on `maxScaledError` for this case, from `toleranceFor`. */
  tolerance: number;
  /** true/false: within tolerance or not; null: the engine does not support the op. */
  pass: boolean | null;
  /** Why a case failed or was not run. */
  reason?: string;
}

/** Result of `runGoldenSuite`. */
export interface AccuracyReport {
  backend: Engine['backend'];
  /** Adapter description (`describeAdapter`), null on the CPU backend. */
  adapter: string | null;
  cases: CaseResult[];
}

/**
 * Golden ops the engine does not implement, with the reason reported for them. Remove an
 * entry here and add a branch to `runOp` when the engine gains the op.
 */
export const UNSUPPORTED_OPS: Readonly<Record<string, string>> = {};

/**
 * Tolerance on the max scaled error |actual − expected| / (1 + |expected|) of a case:
 * 1e-3 for `dist: 'offset'`, 1e-5 for every other distribution.
 *
 * Why: `offset` inputs sit on a large mean with a small spread, so float32 inputs carry an
 * absolute rounding error of ~|mean|·2⁻²⁴ which normalization divides by the small standard
 * deviation; the float64 reference has no such loss. Other distributions are well
 * conditioned, so float32 arithmetic with a sound reduction stays within 1e-5.
 */
export function toleranceFor(c: Pick<GoldenCase, 'dist'>): number {
  return c.dist === 'offset' ? 1e-3 : 1e-5;
}

/** One line naming an adapter, e.g. `google swiftshader (SwiftShader Device (Subzero))`. */
export function describeAdapter(info: Engine['adapterInfo']): string | null {
  if (!info) return null;
  const name = [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const detail = [info.device, info.description].filter(Boolean).join(', ');
  return detail ? `${name} (${detail})` : name;
}

/**
 * Run every case of `manifest` on `engine`. Cases run one after another; an engine error in a
 * case fails that case only. `onCase` sees each result as soon as it is known.
 */
export async function runGoldenSuite(
  engine: Engine,
  manifest: GoldenManifest,
  loadFile: (name: string) => Promise<ArrayBuffer>,
  onCase?: (result: CaseResult) => void,
): Promise<AccuracyReport> {
  const cases: CaseResult[] = [];
  for (const c of manifest.cases) {
    const result = await runCase(engine, c, loadFile);
    cases.push(result);
    onCase?.(result);
  }
  return { backend: engine.backend, adapter: describeAdapter(engine.adapterInfo), cases };
}

/** A named pair of values to compare: engine output and golden reference. */
export interface Comparison {
  name: string;
  actual: Float32Array;
  expected: Float32Array;
}

async function runCase(
  engine: Engine,
  c: GoldenCase,
  loadFile: (name: string) => Promise<ArrayBuffer>,
): Promise<CaseResult> {
  // Cases of the model manifest (test/golden-model: kinds half, fused, module) run through model-cases.ts.
  const model = modelCase(c);
  const tolerance = model?.tolerance ?? (isGradCase(c) ? gradTolerance(c) : toleranceFor(c));
  const base = { id: c.id, op: c.op, layout: c.layout ?? null, tolerance };
  const unsupported = model ? model.unsupported : UNSUPPORTED_OPS[c.op] ?? (OPS.has(c.op) ? undefined : `no runner for op '${c.op}'`);
  if (unsupported !== undefined) {
    return { ...base, maxAbsError: null, maxScaledError: null, pass: null, reason: unsupported };
  }
  const made: Tensor[] = [];
  try {
    const load = async (key: string): Promise<Float32Array> => {
      // Dotted keys reach into nested entries (module cases: `train.0.input`).
      const name = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], c);
      if (typeof name !== 'string') throw new Error(`case has no '${key}' file`);
      const buffer = await loadFile(name);
      // .f16 files (model manifest) hold IEEE halves: their values, exactly, as float32.
      if (name.endsWith('.f16')) {
        if (buffer.byteLength % 2 !== 0) throw new Error(`${name}: ${buffer.byteLength} bytes is not float16 data`);
        return fromHalfBits(new Uint16Array(buffer));
      }
      if (buffer.byteLength % 4 !== 0) throw new Error(`${name}: ${buffer.byteLength} bytes is not float32 data`);
      return new Float32Array(buffer);
    };
    // Collects every tensor the case makes so that `finally` disposes them.
    const track = <T extends Tensor>(t: T): T => {
      made.push(t);
      return t;
    };
    const comparisons = model
      ? await model.run!(engine, c, load, track)
      : isGradCase(c)
      ? await runGradCase(engine, c, load, track)
      : PREPROCESSING_OPS.has(c.op)
      ? await runPreprocessingOp(engine, c, loadFile, load, track)
      : await runOp(engine, c, load, track);
    const { maxAbs, maxScaled, problem } = compare(comparisons);
    const pass = problem === undefined && maxScaled <= base.tolerance;
    const reason = problem ?? (pass ? undefined : `max scaled error ${maxScaled.toExponential(3)} > ${base.tolerance.toExponential(0)}`);
    return { ...base, maxAbsError: maxAbs, maxScaledError: maxScaled, pass, ...(reason ? { reason } : {}) };
  } catch (err) {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return { ...base, maxAbsError: null, maxScaledError: null, pass: false, reason };
  } finally {
    for (const t of made) t.dispose();
  }
}

/** The golden ops `runOp` handles. */
const OPS = new Set([
  'batch_norm_train', 'batch_norm_eval', 'layer_norm', 'rms_norm', 'instance_norm', 'group_norm', 'moments',
  ...PREPROCESSING_OPS,
]);

/** Manifest layouts: the NCHW/NHWC names and their 3-D and 5-D kin. */
export const LAYOUTS: Readonly<Record<string, 'channels-first' | 'channels-last'>> = {
  NCHW: 'channels-first',
  NHWC: 'channels-last',
  NC: 'channels-first',
  NCL: 'channels-first',
  NLC: 'channels-last',
  NCDHW: 'channels-first',
  NDHWC: 'channels-last',
  // 2-D [rows, hidden]: only the trailing-dims ops use it, for which layout does not matter.
  ROWS: 'channels-first',
};

/**
 * Run one supported op and return what to compare, reading every result back. `extra` (model
 * cases) gives the input dtype and epilogue options: with `returnSum` the sum is compared too.
 */
export async function runOp(
  engine: Engine,
  c: GoldenCase,
  load: (key: string) => Promise<Float32Array>,
  track: <T extends Tensor>(t: T) => T,
  extra: { dtype?: DType; epilogue?: (layout: Layout) => Promise<EpilogueOptions> } = {},
): Promise<Comparison[]> {
  const layout = c.layout === undefined ? undefined : LAYOUTS[c.layout];
  if (layout === undefined) throw new Error(`unknown layout '${c.layout}'`);
  const x = track(engine.tensor(await load('input'), c.shape, { layout, dtype: extra.dtype }));
  const p = c.params;
  const eps = optionalNumber(p, 'eps');
  // Affine cases name their weight/bias files (rms_norm has a weight only).
  const weight = typeof c.weight === 'string' ? await load('weight') : undefined;
  const bias = typeof c.bias === 'string' ? await load('bias') : undefined;
  const epi = extra.epilogue ? await extra.epilogue(layout) : {};
  const out1 = async (y: Tensor): Promise<Comparison> => ({ name: 'output', actual: await track(y).read(), expected: await load('output') });
  const output = async (r: Tensor | NormWithSum): Promise<Comparison[]> => ('sum' in r
    ? [await out1(r.y), { name: 'sum', actual: await track(r.sum).read(), expected: await load('sum') }]
    : [await out1(r)]);

  switch (c.op) {
    case 'batch_norm_train': {
      const runningMean = track(engine.tensor(await load('running_mean'), [channels(c)]));
      const runningVar = track(engine.tensor(await load('running_var'), [channels(c)]));
      const momentum = optionalNumber(p, 'momentum');
      const y = engine.batchNorm(x, { ...epi, runningMean, runningVar, weight, bias, training: true, momentum, eps });
      return [
        ...(await output(y)),
        { name: 'running_mean', actual: await runningMean.read(), expected: await load('running_mean_out') },
        { name: 'running_var', actual: await runningVar.read(), expected: await load('running_var_out') },
      ];
    }
    case 'batch_norm_eval': {
      const runningMean = await load('running_mean');
      const runningVar = await load('running_var');
      return output(engine.batchNorm(x, { ...epi, runningMean, runningVar, weight, bias, training: false, eps }));
    }
    case 'layer_norm':
      return output(engine.layerNorm(x, { ...epi, normalizedShape: normalizedShape(p), weight, bias, eps }));
    case 'rms_norm':
      return output(engine.rmsNorm(x, { ...epi, normalizedShape: normalizedShape(p), weight, eps }));
    case 'instance_norm':
      return output(engine.instanceNorm(x, { ...epi, weight, bias, eps }));
    case 'group_norm': {
      const numGroups = optionalNumber(p, 'num_groups');
      if (numGroups === undefined) throw new Error('group_norm case without params.num_groups');
      return output(engine.groupNorm(x, { ...epi, numGroups, weight, bias, eps }));
    }
    case 'moments': {
      const axes = numberArray(p, 'axes');
      const trackBoth = (m: { mean: Tensor; variance: Tensor }) => ({ mean: track(m.mean), variance: track(m.variance) });
      const biased = trackBoth(engine.moments(x, { axes, correction: 0 }));
      const unbiased = trackBoth(engine.moments(x, { axes, correction: 1 }));
      const mean = await load('mean');
      return [
        { name: 'mean (correction 0)', actual: await biased.mean.read(), expected: mean },
        { name: 'mean (correction 1)', actual: await unbiased.mean.read(), expected: mean },
        { name: 'var_biased', actual: await biased.variance.read(), expected: await load('var_biased') },
        { name: 'var_unbiased', actual: await unbiased.variance.read(), expected: await load('var_unbiased') },
      ];
    }
    default:
      throw new Error(`no runner for op '${c.op}'`);
  }
}

/**
 * Max absolute and scaled error over all comparisons. A length mismatch, or a non-finite
 * actual value where the reference is finite (or the reverse), is a `problem`: it fails the
 * case whatever the tolerance, and makes the errors Infinity.
 */
function compare(comparisons: readonly Comparison[]): { maxAbs: number; maxScaled: number; problem?: string } {
  let maxAbs = 0;
  let maxScaled = 0;
  let problem: string | undefined;
  for (const { name, actual, expected } of comparisons) {
    if (actual.length !== expected.length) {
      problem ??= `${name}: ${actual.length} values, expected ${expected.length}`;
      maxAbs = maxScaled = Infinity;
      continue;
    }
    for (let i = 0; i < expected.length; i++) {
      const a = actual[i]!;
      const e = expected[i]!;
      if (Number.isFinite(a) !== Number.isFinite(e) || (!Number.isFinite(e) && !Object.is(a, e))) {
        problem ??= `${name}[${i}] is ${a}, expected ${e}`;
        maxAbs = maxScaled = Infinity;
        continue;
      }
      if (!Number.isFinite(e)) continue; // the same non-finite value on both sides
      const d = Math.abs(a - e);
      if (d > maxAbs) maxAbs = d;
      const s = d / (1 + Math.abs(e));
      if (s > maxScaled) maxScaled = s;
    }
  }
  return problem === undefined ? { maxAbs, maxScaled } : { maxAbs, maxScaled, problem };
}

/** Channel count of an NCHW/NHWC case: per-channel params have this length. */
export function channels(c: GoldenCase): number {
  const dim = c.layout !== undefined && LAYOUTS[c.layout] === 'channels-last' ? c.shape[c.shape.length - 1] : c.shape[1];
  if (dim === undefined) throw new Error(`shape [${c.shape.join(', ')}] has no channel dim`);
  return dim;
}

/** PyTorch takes `normalized_shape` as an int or a list of ints. */
export function normalizedShape(p: Record<string, unknown>): number[] {
  return typeof p.normalized_shape === 'number' ? [p.normalized_shape] : numberArray(p, 'normalized_shape');
}

/** A numeric param; absent or null (PyTorch's None, e.g. rms_norm's eps) means the op's default. */
export function optionalNumber(p: Record<string, unknown>, key: string): number | undefined {
  const v = p[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new Error(`params.${key} is not a number`);
  return v;
}

function numberArray(p: Record<string, unknown>, key: string): number[] {
  const v = p[key];
  if (!Array.isArray(v) || !v.every((n) => typeof n === 'number')) throw new Error(`params.${key} is not a number array`);
  return v as number[];
}
