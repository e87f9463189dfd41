/**
 * The seeded GPU-vs-CPU fuzz: a case generator (op, shape, layout, options, data, kernel family)
 * that is a pure function of (seed, index), and a runner that executes batches of cases on the
 * three WebGPU kernel families and on the float64 CPU backend and compares them. Shared by
 * test/fuzz.gpu.test.ts (CI size and the full-size `npm run fuzz`).
 */
import { NormGpuError, Tensor, type Engine, type KernelChoice, type Layout, type OpName } from '../../src/index';
import { groupMeanAbs, mulberry32, normalSampler, sizeOf, withValidation } from './gpu';
import { grouping } from './reference';

export type Family = 'auto' | 'parallel' | 'serial';
export const FAMILIES: readonly Family[] = ['auto', 'parallel', 'serial'];

/**
 * Which kernels a case's sizes aim at (group size m, group count g):
 * odd  small dims from {1, 2, 3, 5, 7, 11, 13, 17}, m and g small;
 * vec4 innermost reduced dim (and half the time kept dim) a multiple of 4 (vec4 and fused-rows
 *      entries);
 * wide 64 < m ≤ 4096 (past the serial "small groups" cut, one workgroup per group);
 * multi 4096 < m ≤ 20000 (a group split over several workgroups / row chunks);
 * huge 70000 ≤ m ≤ 100000 (multi-workgroup reductions with many partials);
 * many 256 ≤ g ≤ 2048 groups of m ≤ 16 elements (16 to 64 in the parallel family).
 */
export type SizeClass = 'odd' | 'vec4' | 'wide' | 'multi' | 'huge' | 'many';

/**
 * Input data: normal N(0, 1); offset μ + N(0, 1) with |μ| = 10^U(0, 4); pixels integers
 * 0..255; constant one value everywhere (every group constant); tiny 1e-30·N(0, 1); huge
 * 1e18·N(0, 1) or 1e20·N(0, 1) (x² and sums of squares overflow float32); mixed a per-element
 * mix of scales and zeros.
 */
export type DataKind = 'normal' | 'offset' | 'pixels' | 'constant' | 'tiny' | 'huge' | 'mixed';

/** Where an affine parameter or BatchNorm running statistic comes from. */
export type Source = 'host' | 'tensor';

export interface FuzzCase {
  seed: number;
  index: number;
  family: Family;
  op: OpName;
  shape: number[];
  layout: Layout;
  sizeClass: SizeClass;
  data: DataKind;
  /** offset: μ; huge: the scale; constant: the value. */
  dataParam: number;
  /** NaN / +Inf / -Inf injected at random positions (empty: none). */
  specials: number[];
  weight?: Source;
  bias?: Source;
  /** BatchNorm: running statistics given (eval: required; training: updated in place). */
  running?: Source;
  training?: boolean;
  momentum?: number;
  eps?: number;
  numGroups?: number;
  normalizedShape?: number[];
  axes?: number[];
  correction?: number;
  /**
   * An argument made invalid (a reshaped x may stay valid): both backends must then throw the
   * same NormGpuError code, or both run.
   */
  invalid?: string;
}

// ---------------------------------------------------------------------------------------------
// Case generation: a pure function of (seed, index)
// ---------------------------------------------------------------------------------------------

/** Seed of case `index` of run `seed` (one mulberry32 step over a mix of both). */
function caseSeed(seed: number, index: number): number {
  return Math.floor(mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0)() * 2 ** 32);
}

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
/** Log-uniform integer in [lo, hi]. */
const logInt = (r: Rng, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(lo * (hi / lo) ** r())));
function weighted<T extends string>(r: Rng, table: Record<T, number>): T {
  const entries = Object.entries(table) as [T, number][];
  let u = r() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) if ((u -= w) < 0) return k;
  return entries[entries.length - 1][0];
}

const ODD = [1, 2, 3, 5, 7, 11, 13, 17];
const PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 61, 67, 97, 101, 127, 131, 257, 263, 317, 331];

/**
 * Share of cases per size class, op and data kind (huge is rare: each costs ~100k elements).
 * The parallel family runs 256-wide workgroups per group (or per chunk of one), which a
 * software adapter executes at about a millisecond each: its cases have fewer groups.
 */
const CLASS_WEIGHTS: Record<SizeClass, number> = { odd: 34, vec4: 22, wide: 17, multi: 8, huge: 0.3, many: 12 };
const PARALLEL_CLASS_WEIGHTS: Record<SizeClass, number> = { ...CLASS_WEIGHTS, many: 4 };
const OP_WEIGHTS: Record<OpName, number> = { batchNorm: 24, layerNorm: 16, rmsNorm: 13, instanceNorm: 13, groupNorm: 18, moments: 16 };
const DATA_WEIGHTS: Record<DataKind, number> = { normal: 36, offset: 16, pixels: 8, constant: 8, tiny: 8, huge: 12, mixed: 8 };
/** Share of cases with NaN / ±Inf injected, and with a deliberately invalid argument. */
const SPECIALS_RATE = 0.1;
const INVALID_RATE = 0.02;

/**
 * `k` dims whose product is about `target`; the innermost is adjusted to hit it. Styles: odd
 * (from ODD and primes), vec4 (the innermost a multiple of 4), any (mixed).
 */
function dimsFor(r: Rng, k: number, target: number, style: 'odd' | 'vec4' | 'any'): number[] {
  if (k === 0) return [];
  if (style === 'odd') return Array.from({ length: k }, () => (r() < 0.8 ? pick(r, ODD) : pick(r, PRIMES.slice(0, 12))));
  const dims: number[] = [];
  let left = Math.max(1, target);
  for (let i = 0; i < k - 1; i++) {
    const ideal = left ** (1 / (k - i));
    const d = r() < 0.4 ? pick(r, ODD) : r() < 0.5 ? pick(r, PRIMES.filter((p) => p <= Math.max(2, 2 * ideal))) : Math.max(1, Math.round(ideal * (0.5 + r())));
    dims.push(d);
    left = Math.max(1, left / d);
  }
  let last = Math.max(1, Math.round(left));
  if (style === 'vec4') last = Math.max(4, Math.round(last / 4) * 4);
  dims.push(last);
  return dims;
}

/**
 * Per size class: ranges of group size m and group count g the dims aim at, and the largest
 * tensor and group count accepted (a case is redrawn until it fits), by family.
 */
interface Limits {
  m: [number, number];
  g: [number, number];
  maxElements: number;
  maxGroups: number;
}
const LIMITS: Record<SizeClass, Limits> = {
  odd: { m: [1, 1], g: [1, 1], maxElements: 4096, maxGroups: Infinity }, // dims drawn directly
  vec4: { m: [4, 4096], g: [1, 64], maxElements: 16384, maxGroups: Infinity },
  wide: { m: [65, 4096], g: [1, 16], maxElements: 16384, maxGroups: Infinity },
  multi: { m: [4097, 20000], g: [1, 4], maxElements: 40000, maxGroups: Infinity },
  huge: { m: [70000, 100000], g: [1, 2], maxElements: 200000, maxGroups: 2 },
  many: { m: [1, 16], g: [256, 2048], maxElements: 20000, maxGroups: Infinity },
};
const PARALLEL_LIMITS: Record<SizeClass, Limits> = {
  odd: { ...LIMITS.odd, maxElements: 2048, maxGroups: 16 },
  vec4: { ...LIMITS.vec4, g: [1, 8], maxGroups: 8 },
  wide: { ...LIMITS.wide, g: [1, 8], maxGroups: 8 },
  multi: { ...LIMITS.multi, g: [1, 2], maxGroups: 4 },
  huge: LIMITS.huge,
  many: { m: [1, 16], g: [16, 64], maxElements: 1024, maxGroups: 64 },
};

interface Split {
  reduced: number[];
  kept: number[];
}

function drawDims(r: Rng, cls: SizeClass, limits: Limits, reducedCount: number, keptCount: number): Split {
  const { m, g } = limits;
  const style = cls === 'odd' ? 'odd' : cls === 'vec4' ? 'vec4' : 'any';
  const reduced = dimsFor(r, reducedCount, logInt(r, m[0], m[1]), style);
  let kept = dimsFor(r, keptCount, logInt(r, g[0], g[1]), style === 'vec4' ? (r() < 0.5 ? 'vec4' : 'any') : style);
  // The huge class keeps its element count near the group size.
  if (cls === 'huge') kept = kept.map((_, i) => (i === kept.length - 1 ? pick(r, [1, 1, 2]) : 1));
  if (style !== 'odd' && reducedCount > 0 && sizeOf(reduced) < m[0]) reduced[reduced.length - 1] *= Math.ceil(m[0] / sizeOf(reduced));
  return { reduced, kept };
}

/** Shape of a channel op: kept/reduced dims placed as [N, C, ...S] or [N, ...S, C]. */
function channelShape(layout: Layout, n: number, c: number, spatial: number[]): number[] {
  return layout === 'channels-first' ? [n, c, ...spatial] : [n, ...spatial, c];
}

function divisors(c: number): number[] {
  const d: number[] = [];
  for (let g = 1; g <= c; g++) if (c % g === 0) d.push(g);
  return d;
}

const source = (r: Rng): Source => (r() < 0.5 ? 'host' : 'tensor');

/**
 * The shape of case `c` and the options tied to it (numGroups, normalizedShape, axes), drawn
 * for its op, layout and size class.
 */
function drawShape(r: Rng, c: FuzzCase, limits: Limits): void {
  const { layout, sizeClass } = c;
  switch (c.op) {
    case 'batchNorm': {
      // Reduced: N and the spatial dims; kept: C.
      const rank = int(r, 2, 5);
      const { reduced, kept } = drawDims(r, sizeClass, limits, rank - 1, 1);
      c.shape = channelShape(layout, reduced[0], kept[0], reduced.slice(1));
      return;
    }
    case 'instanceNorm': {
      const rank = int(r, 3, 5);
      const { reduced, kept } = drawDims(r, sizeClass, limits, rank - 2, 2);
      c.shape = channelShape(layout, kept[0], kept[1], reduced);
      return;
    }
    case 'groupNorm': {
      // Reduced: C/G and the spatial dims; kept: N and G.
      const rank = int(r, 2, 5);
      const { reduced, kept } = drawDims(r, sizeClass, limits, rank - 1, 2);
      const [perGroup, ...spatial] = reduced;
      const channels = kept[1] * perGroup;
      c.shape = channelShape(layout, kept[0], channels, spatial);
      // Sometimes another divisor of C: the same shape, grouped differently.
      c.numGroups = r() < 0.3 ? pick(r, divisors(channels)) : kept[1];
      return;
    }
    case 'layerNorm':
    case 'rmsNorm': {
      const rank = int(r, 2, 5);
      const k = int(r, 1, Math.min(3, rank));
      const { reduced, kept } = drawDims(r, sizeClass, limits, k, rank - k);
      c.shape = [...kept, ...reduced];
      c.normalizedShape = reduced.slice();
      return;
    }
    case 'moments': {
      // Any non-empty subset: unsupported patterns must throw INVALID_AXES on both backends.
      const rank = int(r, 2, 5);
      const mask = int(r, 1, 2 ** rank - 1);
      const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => mask & (1 << i));
      const { reduced, kept } = drawDims(r, sizeClass, limits, axes.length, rank - axes.length);
      let ri = 0;
      let ki = 0;
      c.shape = Array.from({ length: rank }, (_, i) => (mask & (1 << i) ? reduced[ri++] : kept[ki++]));
      c.axes = axes.map((a) => (r() < 0.3 ? a - rank : a));
    }
  }
}

/** Case `index` of run `seed`. */
export function makeCase(seed: number, index: number): FuzzCase {
  const r = mulberry32(caseSeed(seed, index));
  const family = FAMILIES[index % FAMILIES.length];
  const op = weighted(r, OP_WEIGHTS);
  const sizeClass = weighted(r, family === 'parallel' ? PARALLEL_CLASS_WEIGHTS : CLASS_WEIGHTS);
  const limits = (family === 'parallel' ? PARALLEL_LIMITS : LIMITS)[sizeClass];
  const layout: Layout = r() < 0.5 ? 'channels-first' : 'channels-last';
  const c: FuzzCase = { seed, index, family, op, shape: [], layout, sizeClass, data: 'normal', dataParam: 0, specials: [] };
  // Redraw until the case fits its budget (a few tries at most). A batch of 1 is common in
  // channel ops, and a plan case of its own (BatchNorm's view has P = 1).
  do {
    drawShape(r, c, limits);
    if ((op === 'batchNorm' || op === 'instanceNorm' || op === 'groupNorm') && r() < 0.25) c.shape[0] = 1;
  } while (sizeOf(c.shape) > limits.maxElements || grouping(op, c.shape, layout, c).groups > limits.maxGroups);

  if (op === 'batchNorm') {
    c.training = r() < 0.7;
    if (!c.training) c.running = source(r);
    else if (r() < 0.6) c.running = 'tensor';
    if (c.training) c.momentum = pick(r, [undefined, 0, 0.1, 0.5, 1, Math.fround(r())]);
  }
  if (op === 'moments') c.correction = pick(r, [undefined, 0, 1, 1, 2]);
  if (op !== 'moments') {
    if (r() < 0.6) c.weight = source(r);
    if (op !== 'rmsNorm' && r() < 0.6) c.bias = source(r);
  }
  c.data = weighted(r, DATA_WEIGHTS);
  if (c.data === 'offset') c.dataParam = (r() < 0.5 ? -1 : 1) * Math.fround(10 ** (4 * r()));
  // Not 1e20 where BatchNorm updates running statistics: its batch variance (1e40) exceeds
  // float32, so the blended running variance has no float32 answer (PyTorch gives inf or NaN).
  else if (c.data === 'huge') c.dataParam = op === 'batchNorm' && c.training && c.running ? 1e18 : pick(r, [1e18, 1e18, 1e20]);
  else if (c.data === 'constant') c.dataParam = Math.fround(pick(r, [0, 1, -3.75, 1e4 + 0.5, 1e-30, 1e18, 10 * r() - 5]));
  if (op !== 'moments' && r() < 0.3) {
    // eps = 0 only on normal data: there a zero variance comes only from one-element groups,
    // whose 0 · 1/0 is NaN on both backends.
    c.eps = c.data === 'normal' && r() < 0.3 ? 0 : pick(r, [1e-3, 1e-1, 1e-8]);
  }
  if (r() < SPECIALS_RATE) {
    c.specials = Array.from({ length: int(r, 1, 3) }, () => pick(r, [NaN, Infinity, -Infinity]));
  }
  if (r() < INVALID_RATE) c.invalid = makeInvalid(r, c);
  return c;
}

/** Perturb one argument so that it is invalid; returns what was done. */
function makeInvalid(r: Rng, c: FuzzCase): string {
  const options: (() => string)[] = [
    () => ((c.eps = pick(r, [-1, NaN, Infinity])), `eps ${c.eps}`),
    () => ((c.shape = [...c.shape.slice(0, -1), c.shape[c.shape.length - 1] + 1]), 'x one element longer on the last dim, params for the old shape'),
  ];
  if (c.op === 'batchNorm') {
    options.push(() => ((c.momentum = pick(r, [-0.5, 1.5, NaN])), `momentum ${c.momentum}`));
    options.push(() => ((c.training = true), (c.running = 'host'), 'training with host running statistics'));
    options.push(() => ((c.training = false), (c.running = undefined), 'inference without running statistics'));
  }
  if (c.op === 'groupNorm') options.push(() => ((c.numGroups = (c.numGroups ?? 1) + pick(r, [1, 2, 3]) * channelsOf(c)), `numGroups ${c.numGroups} > C`));
  if (c.op === 'groupNorm') options.push(() => ((c.numGroups = pick(r, [0, -1, 1.5])), `numGroups ${c.numGroups}`));
  if (c.op === 'layerNorm' || c.op === 'rmsNorm') {
    options.push(() => ((c.normalizedShape = [...c.normalizedShape!.slice(0, -1), c.normalizedShape!.at(-1)! + 1]), 'normalizedShape off by one'));
  }
  if (c.op === 'moments') {
    options.push(() => ((c.axes = [...c.axes!, c.axes![0]]), 'repeated axis'));
    options.push(() => ((c.axes = [c.shape.length]), 'axis out of range'));
    options.push(() => ((c.correction = -1), 'correction -1'));
  }
  return pick(r, options)();
}

const channelsOf = (c: FuzzCase) => (c.layout === 'channels-first' ? c.shape[1] : c.shape[c.shape.length - 1]);

/** Length of weight/bias (and running statistics) the op expects, from the case's valid shape. */
function paramLength(c: FuzzCase, shape: readonly number[]): number {
  if (c.op === 'layerNorm' || c.op === 'rmsNorm') return sizeOf(c.normalizedShape!);
  return c.layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

export interface Inputs {
  x: Float32Array;
  weight?: Float32Array;
  bias?: Float32Array;
  runningMean?: Float32Array;
  runningVar?: Float32Array;
}

/** The data of case `c`; with an invalid shape the parameters keep the valid shape's lengths. */
export function inputsOf(c: FuzzCase): Inputs {
  const r = mulberry32(caseSeed(c.seed, c.index) ^ 0x5eed);
  const normal = normalSampler(r);
  const n = sizeOf(c.shape);
  const x = new Float32Array(n);
  switch (c.data) {
    case 'normal': for (let i = 0; i < n; i++) x[i] = normal(); break;
    case 'offset': for (let i = 0; i < n; i++) x[i] = c.dataParam + normal(); break;
    case 'pixels': for (let i = 0; i < n; i++) x[i] = Math.floor(r() * 256); break;
    case 'constant': x.fill(c.dataParam); break;
    case 'tiny': for (let i = 0; i < n; i++) x[i] = 1e-30 * normal(); break;
    case 'huge': for (let i = 0; i < n; i++) x[i] = c.dataParam * normal(); break;
    case 'mixed':
      for (let i = 0; i < n; i++) {
        const k = Math.floor(r() * 5);
        x[i] = k === 0 ? normal() : k === 1 ? 1e3 * normal() : k === 2 ? 1e-3 * normal() : k === 3 ? 0 : 5 + normal();
      }
      break;
  }
  for (const v of c.specials) x[Math.floor(r() * n)] = v;
  const validShape = c.invalid?.startsWith('x one element longer') ? [...c.shape.slice(0, -1), c.shape[c.shape.length - 1] - 1] : c.shape;
  const len = c.op === 'moments' ? 0 : paramLength(c, validShape);
  const inp: Inputs = { x };
  if (c.weight) inp.weight = Float32Array.from({ length: len }, () => (r() < 0.2 ? -1 : 1) * (0.5 + r()));
  if (c.bias) inp.bias = Float32Array.from({ length: len }, () => normal());
  if (c.running) {
    inp.runningMean = Float32Array.from({ length: len }, () => r() - 0.5);
    inp.runningVar = Float32Array.from({ length: len }, () => 0.25 + r());
  }
  return inp;
}

// ---------------------------------------------------------------------------------------------
// Running a case on one engine
// ---------------------------------------------------------------------------------------------

/** Outputs by name (y; runningMean/runningVar after BatchNorm training; mean/variance), or a thrown code. */
export type Outcome = { outputs: Record<string, Float32Array> } | { error: string; message: string };

/** The NormGpuError code (compared) and the message (printed) of a thrown error. */
const thrown = (e: unknown): Outcome =>
  ({ error: e instanceof NormGpuError ? e.code : 'not a NormGpuError', message: String(e) });

/**
 * Issue case `c` on `engine` without waiting: every call is made now, the reads are awaited
 * by the returned promise, which also disposes the case's tensors. After a call that did not
 * throw, `onPlan` receives the kernels `engine.explain` reports for it.
 */
export function startCase(engine: Engine, c: FuzzCase, inp: Inputs, onPlan?: (kernels: KernelChoice[]) => void): Promise<Outcome> {
  const owned: Tensor[] = [];
  const keep = (t: Tensor) => (owned.push(t), t);
  const release = () => {
    for (const t of owned) t.dispose();
  };
  let reads: [string, Promise<Float32Array>][];
  try {
    const x = keep(engine.tensor(inp.x, c.shape, { layout: c.layout }));
    const param = (a: Float32Array | undefined, s: Source | undefined) =>
      a === undefined ? undefined : s === 'tensor' ? keep(engine.tensor(a, [a.length])) : a;
    const runningMean = param(inp.runningMean, c.running);
    const runningVar = param(inp.runningVar, c.running);
    const opts: Record<string, unknown> = {
      weight: param(inp.weight, c.weight), bias: param(inp.bias, c.bias), runningMean, runningVar,
      training: c.training, momentum: c.momentum, eps: c.eps, numGroups: c.numGroups,
      normalizedShape: c.normalizedShape, axes: c.axes, correction: c.correction,
    };
    for (const k of Object.keys(opts)) if (opts[k] === undefined) delete opts[k];
    if (c.op === 'moments') {
      const m = engine.moments(x, opts as never);
      reads = [['mean', keep(m.mean).read()], ['variance', keep(m.variance).read()]];
      onPlan?.(engine.explain(c.op, x, opts).kernels);
    } else {
      const run = engine[c.op].bind(engine) as (x: Tensor, o: object) => Tensor;
      reads = [['y', keep(run(x, opts)).read()]];
      onPlan?.(engine.explain(c.op, x, opts).kernels);
      // Training updates Tensor running statistics in place: read them after the call.
      if (c.training && runningMean instanceof Tensor && runningVar instanceof Tensor) {
        reads.push(['runningMean', runningMean.read()], ['runningVar', runningVar.read()]);
      }
    }
  } catch (e) {
    release();
    return Promise.resolve(thrown(e));
  }
  return Promise.all(reads.map(([, p]) => p)).then(
    (arrays) => ({ outputs: Object.fromEntries(arrays.map((a, i) => [reads[i][0], a])) }),
    thrown,
  ).finally(release);
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/**
 * TOLERANCE: every output of every case is held to the product's accuracy bar against float64,
 * a max scaled error ≤ 1e-5, with NaN only against NaN and an infinity only against the same
 * infinity (the NaN pattern must match exactly).
 *
 * Both backends read the same float32 inputs, so input rounding is common to both; the GPU
 * adds float32 arithmetic. Its floor is one rounding of the output (2^-24 ≈ 6e-8) plus a few
 * ulps per merge of partial statistics: 1e-5 leaves over 100 ulps.
 *
 * Offsets: a float32 engine that forms x − mean from a float32 mean near μ loses up to
 * ulp(μ)/2 ≈ |μ|·2^-24 in every centered value, i.e. |μ|/σ·6e-8 of the output: 6e-4 for the
 * offset cases here (|μ| up to 1e4, σ = 1), so such an engine would need 1e-3. normgpu shifts
 * each group by one of its own values before summing (x − shift is exact by Sterbenz within a
 * factor 2 and small otherwise), so centered values carry only the spread's rounding, and
 * offset cases are held to the same 1e-5: a case that needs more is an engine bug to report.
 *
 * Outputs (y, variance, runningVar): |gpu − cpu| / (1 + |cpu|) ≤ 1e-5.
 * Means (moments mean, BatchNorm runningMean): |gpu − cpu| / (1 + |cpu| + A) ≤ 1e-5, A the
 * mean |x| of the group's finite inputs. A float32 sum of values of size A rounds at ε·A
 * whatever its result, so a mean that cancels (1e18·N(0, 1) over 11 values has |mean| ≈ 2e-4·A)
 * cannot be relative-accurate in float32; this is the same 1e-5 measured on the data's scale,
 * and equals the plain metric wherever the mean does not cancel (offset data: A ≈ |mean|).
 */
export const TOLERANCE = 1e-5;

export interface Mismatch {
  c: FuzzCase;
  what: string;
}

/** Mean |x| over the finite inputs of each statistics group of case `c` (a valid case). */
function groupScales(c: FuzzCase, x: Float32Array): Float64Array {
  const { groups, groupOf } = grouping(c.op, c.shape, c.layout, c);
  return groupMeanAbs(x, groups, groupOf);
}

/** Worst |a − e| / (1 + |e| + scale[i]) (NaN pattern and infinities as scaledError), and where. */
function worstError(a: Float32Array, e: Float32Array, scale?: Float64Array): { err: number; at: number } {
  let err = 0;
  let at = -1;
  for (let i = 0; i < e.length; i++) {
    const an = Number.isNaN(a[i]);
    const en = Number.isNaN(e[i]);
    let d: number;
    if (an || en) d = an && en ? 0 : Infinity;
    else if (a[i] === e[i]) d = 0;
    else if (!Number.isFinite(a[i]) || !Number.isFinite(e[i])) d = Infinity;
    else d = Math.abs(a[i] - e[i]) / (1 + Math.abs(e[i]) + (scale ? scale[i] : 0));
    if (d > err || at < 0) [err, at] = [d, i];
  }
  return { err, at };
}

/** Null if the GPU outcome matches the CPU one on case `c`, else what differs. */
export function compare(c: FuzzCase, inp: Inputs, gpu: Outcome, cpu: Outcome): string | null {
  if ('error' in cpu || 'error' in gpu) {
    const say = (o: Outcome) => ('error' in o ? o.message : 'no error');
    const same = 'error' in gpu && 'error' in cpu && gpu.error === cpu.error;
    return same ? null : `GPU: ${say(gpu)}; CPU: ${say(cpu)}`;
  }
  const keys = Object.keys(cpu.outputs);
  if (Object.keys(gpu.outputs).sort().join() !== keys.slice().sort().join()) {
    return `outputs ${Object.keys(gpu.outputs)}, the CPU backend ${keys}`;
  }
  const bad: string[] = [];
  for (const k of keys) {
    const a = gpu.outputs[k];
    const e = cpu.outputs[k];
    if (a.length !== e.length) {
      bad.push(`${k}: ${a.length} values, the CPU backend ${e.length}`);
      continue;
    }
    const scale = k === 'mean' || k === 'runningMean' ? groupScales(c, inp.x) : undefined;
    const { err, at } = worstError(a, e, scale);
    if (!(err <= TOLERANCE)) {
      bad.push(`${k}: error ${err} > ${TOLERANCE} at [${at}]: got ${a[at]}, expected ${e[at]}${scale ? ` (group mean |x| ${scale[at]})` : ''}`);
    }
  }
  return bad.length ? bad.join('; ') : null;
}

/** One line that names everything needed to understand and replay a case. */
export function describeCase(c: FuzzCase): string {
  const o: Record<string, unknown> = {
    training: c.training, running: c.running, momentum: c.momentum, eps: c.eps, numGroups: c.numGroups,
    normalizedShape: c.normalizedShape, axes: c.axes, correction: c.correction, weight: c.weight, bias: c.bias,
    specials: c.specials.length ? c.specials.map(String) : undefined, invalid: c.invalid,
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  const data = c.data === 'offset' || c.data === 'huge' || c.data === 'constant' ? `${c.data}(${c.dataParam})` : c.data;
  return `#${c.index} ${c.op} [${c.shape}] ${c.layout} kernels=${c.family} class=${c.sizeClass} data=${data} ${JSON.stringify(o)}` +
    ` — replay: FUZZ_SEED=${c.seed} FUZZ_CASE=${c.index} npx vitest run test/fuzz.gpu.test.ts`;
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

/** Run `fn` inside validation and out-of-memory error scopes of every engine's device. */
function withAllValidation<T>(engines: readonly Engine[], fn: () => Promise<T>): Promise<T> {
  const oneEach = engines.filter((e, i) => engines.findIndex((o) => o.device === e.device) === i);
  return oneEach.reduceRight<() => Promise<T>>((inner, e) => () => withValidation(e, inner), fn)();
}

/** Callbacks of runBatch: the kernels of every GPU call that ran, and every CPU outcome. */
export interface Observer {
  plan?(c: FuzzCase, kernels: KernelChoice[]): void;
  outcome?(c: FuzzCase, cpu: Outcome): void;
}

/**
 * Run `cases` (each on its family's engine) and on `cpu`: every GPU call is issued first, then
 * all reads are awaited together, inside error scopes of every device. Returns the mismatches.
 */
export async function runBatch(
  gpus: Record<Family, Engine>, cpu: Engine, cases: readonly FuzzCase[], observe: Observer = {},
): Promise<Mismatch[]> {
  const inputs = cases.map(inputsOf);
  const mismatches: Mismatch[] = [];
  await withAllValidation(Object.values(gpus), async () => {
    const pending = cases.map((c, i) => startCase(gpus[c.family], c, inputs[i], observe.plan && ((k) => observe.plan!(c, k))));
    // The CPU reference computes while the GPU works.
    const cpuOutcomes: Outcome[] = [];
    for (let i = 0; i < cases.length; i++) cpuOutcomes.push(await startCase(cpu, cases[i], inputs[i]));
    const gpuOutcomes = await Promise.all(pending);
    for (let i = 0; i < cases.length; i++) {
      observe.outcome?.(cases[i], cpuOutcomes[i]);
      const what = compare(cases[i], inputs[i], gpuOutcomes[i], cpuOutcomes[i]);
      if (what) mismatches.push({ c: cases[i], what });
    }
  });
  return mismatches;
}
