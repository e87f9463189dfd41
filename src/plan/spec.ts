import { check } from '../errors';
import type { DType } from '../half';
import {
  DEFAULT_EPS, DEFAULT_MOMENTUM, FLOAT32_EPS,
  type Activation, type EpilogueOptions, type TensorHandle, type BatchNormOptions, type GroupNormOptions, type InstanceNormOptions, type Layout,
  type LayerNormOptions, type MomentsOptions, type RmsNormOptions, type TensorLike, isTensorHandle,
} from './options';
import { checkBoolean, checkFloatData, checkNumber, checkOptions, describe } from './checks';
import type { GroupView } from './view';

/** The normalization families, in PyTorch's names. */
export type OpName = 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm' | 'moments';

/**
 * Where a normalization's statistics come from:
 * `batch` mean/variance of the input, `running` given statistics (BatchNorm inference),
 * `rms` mean of squares, `moments` statistics only (no normalized output).
 */
export type StatsMode = 'batch' | 'running' | 'rms' | 'moments';

/**
 * How the apply stage walks the tensor: rows of `width` contiguous elements, with the group
 * and affine index of row r, column w given by (see apply_norm.wgsl)
 *   group = ((r / groupDiv) % groupMod) * groupMul + [0 | w | w / columnGroupDiv]
 *   param = kind === 'planes' ? (r / paramDiv) % paramMod : w
 * so index math is per row, not per element.
 */
export interface RowLayout {
  /**
   * planes: a row is one channel plane (channels-first), one group and affine pair per row;
   * features: a row is one LayerNorm/RMSNorm group, the affine index is the column;
   * pixels: a row is one pixel's channels (channels-last), group and affine per column.
   */
  readonly kind: 'planes' | 'features' | 'pixels';
  readonly width: number;
  readonly groupDiv: number;
  readonly groupMod: number;
  readonly groupMul: number;
  /** Column part of the group index: 0 none, 1 the column, 2 column / columnGroupDiv. */
  readonly columnGroups: 0 | 1 | 2;
  readonly columnGroupDiv: number;
  readonly paramDiv: number;
  readonly paramMod: number;
}

/** A validated, shape-resolved description of one call: what the backends execute. */
export interface NormSpec {
  readonly op: OpName;
  readonly mode: StatsMode;
  /** Statistics grouping, for the reduce and finalize stages. */
  readonly view: GroupView;
  /** Element walk of the apply stage. */
  readonly rows: RowLayout;
  /** Affine index of view element (o, p, q, s): q * paramQ + floor(s / paramS) (normalize_serial.wgsl). */
  readonly paramQ: number;
  readonly paramS: number;
  readonly eps: number;
  readonly momentum: number;
  /** Bessel correction for `moments`. */
  readonly correction: number;
  /** BatchNorm training with running statistics to update in place. */
  readonly updateRunning: boolean;
  /** Shape of the per-group outputs of `moments`. */
  readonly statsShape: readonly number[];
  /** Element type of the input (and of the residual and the sum). */
  readonly dtype: DType;
  /** Element type of the output (mean and variance for `moments`). */
  readonly outputDtype: DType;
  /** Normalize x + residual (see `epilogueSpec`). */
  readonly residual: boolean;
  /** Activation after the affine. */
  readonly activation: Activation | 'none';
}

export const DTYPES: readonly DType[] = ['float32', 'float16'];
export const ACTIVATIONS: readonly Activation[] = ['relu', 'silu', 'gelu', 'gelu_tanh'];

/** A dtype option: its value, or `fallback` when undefined (INVALID_DTYPE otherwise). */
export function checkDtype(v: unknown, name: string, fallback: DType): DType {
  if (v === undefined) return fallback;
  check(DTYPES.includes(v as DType), 'INVALID_DTYPE', `${name} must be 'float32' or 'float16', got ${describe(v)}`);
  return v as DType;
}

/**
 * The spec of a call on `x` with its dtypes and epilogue options resolved: `residual` must be a
 * tensor of x's shape, layout and dtype (RESIDUAL_MISMATCH), `returnSum` needs it, `activation`
 * is one of ACTIVATIONS (normalizing ops only), `outputDtype` a dtype. Tensor parameters
 * (weight, bias, running statistics) are float32 (INVALID_DTYPE): PyTorch too keeps running
 * statistics in float32 under autocast; host parameter data of any float kind is fine.
 */
export function epilogueSpec(spec: NormSpec, x: TensorHandle, options: object | undefined): NormSpec & { returnSum: boolean } {
  const o = checkOptions(options as EpilogueOptions & Record<string, unknown> | undefined, `${spec.op} options`);
  const dtype = x.dtype ?? 'float32';
  const outputDtype = checkDtype(o.outputDtype, 'outputDtype', dtype);
  for (const k of ['weight', 'bias', 'runningMean', 'runningVar'] as const) {
    const t = o[k];
    check(
      !isTensorHandle(t) || (t.dtype ?? 'float32') === 'float32', 'INVALID_DTYPE',
      `${k} must be a float32 tensor (or host data), got a ${isTensorHandle(t) ? t.dtype : ''} tensor`,
    );
  }
  if (spec.mode === 'moments') return { ...spec, dtype, outputDtype, returnSum: false };
  const residual = o.residual;
  if (residual !== undefined) {
    check(isTensorHandle(residual), 'INVALID_ARGUMENT', `residual must be a Tensor, got ${describe(residual)}`);
    check(
      residual.shape.length === x.shape.length && residual.shape.every((d, i) => d === x.shape[i]), 'RESIDUAL_MISMATCH',
      `residual [${residual.shape}] must have the input's shape [${x.shape}]`,
    );
    check(residual.layout === x.layout, 'RESIDUAL_MISMATCH', `residual is ${residual.layout}, the input ${x.layout}`);
    check(
      (residual.dtype ?? 'float32') === dtype, 'RESIDUAL_MISMATCH', `residual is ${residual.dtype ?? 'float32'}, the input ${dtype}`,
    );
  }
  const returnSum = checkBoolean(o.returnSum, 'returnSum', false);
  check(!returnSum || residual !== undefined, 'INVALID_ARGUMENT', 'returnSum needs a residual');
  const activation = o.activation ?? 'none';
  check(
    o.activation === undefined || ACTIVATIONS.includes(o.activation), 'INVALID_ARGUMENT',
    `activation must be ${ACTIVATIONS.map((a) => `'${a}'`).join(', ')}, got ${describe(o.activation)}`,
  );
  return { ...spec, dtype, outputDtype, residual: residual !== undefined, activation, returnSum };
}

/** A layout given by a user, default channels-first. */
export function checkLayout(layout: Layout | undefined): Layout {
  const l = layout ?? 'channels-first';
  check(l === 'channels-first' || l === 'channels-last', 'INVALID_LAYOUT', `layout must be 'channels-first' or 'channels-last', got ${describe(l)}`);
  return l;
}

/** Validate a shape given by a user. */
export function checkShape(shape: readonly number[], what = 'shape'): void {
  check(Array.isArray(shape) && shape.length > 0, 'INVALID_SHAPE', `${what} must be a non-empty array of dims, got ${describe(shape)}`);
  shape.forEach((d, i) => check(
    Number.isInteger(d) && d >= 0, 'INVALID_SHAPE', `${what}[${i}] is ${describe(d)}, not a non-negative integer`,
  ));
  check(shape.every((d) => d > 0), 'EMPTY_TENSOR', `${what} [${shape}] has no elements`);
}

/** Element count of a TensorLike (without touching its data). */
export function lengthOf(t: TensorLike): number {
  return isTensorHandle(t) ? t.size : t.length;
}

/**
 * Check an optional parameter: a Tensor (its engine is checked by the engine) or host float
 * data (see `checkFloatData`) of `expected` elements; `name` appears in the error.
 */
export function checkParam(name: string, t: TensorLike | undefined, expected: number): void {
  if (t === undefined) return;
  if (!isTensorHandle(t)) {
    check(Array.isArray(t) || ArrayBuffer.isView(t), 'INVALID_ARGUMENT', `${name} must be a Tensor, Float32Array, Float64Array or number[], got ${describe(t)}`);
    checkFloatData(t, name);
  }
  check(lengthOf(t) === expected, 'PARAM_LENGTH_MISMATCH', `${name} has ${lengthOf(t)} elements, expected ${expected}`);
}

function checkEps(eps: unknown): number {
  return checkNumber(eps, 'eps', { min: 0, code: 'INVALID_EPS' });
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Channel count and the spatial extent of a [N, C, ...] or [N, ..., C] tensor. */
function channelsOf(shape: readonly number[], layout: Layout, minRank: number, op: string) {
  check(shape.length >= minRank, 'INVALID_SHAPE', `${op} expects at least ${minRank} dims, got [${shape}]`);
  const n = shape[0];
  const c = layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
  const spatial = product(layout === 'channels-first' ? shape.slice(2) : shape.slice(1, -1));
  return { n, c, spatial };
}

function base(
  op: OpName, mode: StatsMode, view: GroupView, rows: RowLayout, eps: number, paramQ = 1, paramS = view.s,
): NormSpec {
  return {
    op, mode, view, rows, paramQ, paramS, eps, momentum: 0, correction: 0, updateRunning: false, statsShape: [],
    dtype: 'float32', outputDtype: 'float32', residual: false, activation: 'none',
  };
}

/** Rows that are one channel plane each (channels-first): group (r / groupDiv) % groupMod, param r % C. */
function planeRows(spatial: number, c: number, groupDiv: number, groupMod: number): RowLayout {
  return {
    kind: 'planes', width: spatial, groupDiv, groupMod, groupMul: 1, columnGroups: 0, columnGroupDiv: 1,
    paramDiv: 1, paramMod: c,
  };
}

/** Rows whose columns are the affine index (channels-last pixels, LayerNorm rows). */
function columnRows(
  width: number, groupDiv: number, groupMod: number, groupMul: number, columnGroups: 0 | 1 | 2, columnGroupDiv = 1,
): RowLayout {
  return {
    kind: columnGroups === 0 ? 'features' : 'pixels',
    width, groupDiv, groupMod, groupMul, columnGroups, columnGroupDiv, paramDiv: 1, paramMod: width,
  };
}

export function batchNormSpec(shape: readonly number[], layout: Layout, options: BatchNormOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'batchNorm options');
  const { n, c, spatial } = channelsOf(shape, layout, 2, 'batchNorm');
  const training = checkBoolean(opts.training, 'training', false);
  const eps = checkEps(opts.eps ?? DEFAULT_EPS);
  const momentum = checkNumber(opts.momentum ?? DEFAULT_MOMENTUM, 'momentum', { min: 0, max: 1, code: 'INVALID_MOMENTUM' });
  for (const k of ['weight', 'bias', 'runningMean', 'runningVar'] as const) checkParam(k, opts[k], c);
  const hasRunning = opts.runningMean !== undefined || opts.runningVar !== undefined;
  check(
    opts.runningMean !== undefined && opts.runningVar !== undefined || !hasRunning,
    'RUNNING_STATS_REQUIRED', 'runningMean and runningVar must be given together',
  );
  if (training) {
    check(n * spatial > 1, 'TOO_FEW_VALUES', `batchNorm training needs more than 1 value per channel, input [${shape}]`);
    check(
      !hasRunning || (isTensorHandle(opts.runningMean) && isTensorHandle(opts.runningVar)),
      'RUNNING_STATS_NOT_TENSOR', 'training updates runningMean/runningVar in place: pass them as Tensors',
    );
  } else {
    check(hasRunning, 'RUNNING_STATS_REQUIRED', 'batchNorm inference (training: false) needs runningMean and runningVar');
  }
  // With one spatial element ([N, C] inputs) both layouts are the same memory: walk it as
  // channels-last, whose rows are long enough for vec4 access.
  const first = layout === 'channels-first' && spatial > 1;
  const view = first ? { o: 1, p: n, q: c, s: spatial } : { o: 1, p: n * spatial, q: c, s: 1 };
  const rows = first ? planeRows(spatial, c, 1, c) : columnRows(c, 1, 1, 0, 1);
  const spec = base('batchNorm', training ? 'batch' : 'running', view, rows, eps);
  return { ...spec, momentum, updateRunning: training && hasRunning };
}

export function instanceNormSpec(shape: readonly number[], layout: Layout, options: InstanceNormOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'instanceNorm options');
  const { n, c, spatial } = channelsOf(shape, layout, 3, 'instanceNorm');
  const eps = checkEps(opts.eps ?? DEFAULT_EPS);
  checkParam('weight', opts.weight, c);
  checkParam('bias', opts.bias, c);
  check(spatial > 1, 'TOO_FEW_VALUES', `instanceNorm needs more than 1 spatial element, input [${shape}]`);
  const first = layout === 'channels-first';
  const view = first ? { o: n, p: 1, q: c, s: spatial } : { o: n, p: spatial, q: c, s: 1 };
  const rows = first ? planeRows(spatial, c, 1, n * c) : columnRows(c, spatial, n, c, 1);
  return base('instanceNorm', 'batch', view, rows, eps);
}

export function groupNormSpec(shape: readonly number[], layout: Layout, options: GroupNormOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'groupNorm options');
  const { n, c, spatial } = channelsOf(shape, layout, 2, 'groupNorm');
  const g = checkNumber(opts.numGroups, 'numGroups', { min: 1, integer: true });
  check(c % g === 0, 'GROUPS_NOT_DIVISIBLE', `numGroups ${g} does not divide the ${c} channels`);
  const eps = checkEps(opts.eps ?? DEFAULT_EPS);
  checkParam('weight', opts.weight, c);
  checkParam('bias', opts.bias, c);
  const first = layout === 'channels-first' && spatial > 1;
  const cg = c / g;
  const view = first ? { o: n, p: 1, q: g, s: cg * spatial } : { o: n, p: spatial, q: g, s: cg };
  const rows = first ? planeRows(spatial, c, cg, n * g) : columnRows(c, spatial, n, g, cg === 1 ? 1 : 2, cg);
  return base('groupNorm', 'batch', view, rows, eps, cg, first ? spatial : 1);
}

function trailingSpec(op: 'layerNorm' | 'rmsNorm', shape: readonly number[], normalizedShape: unknown) {
  const dims = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  check(
    Array.isArray(dims) && dims.length > 0 && dims.every((d) => typeof d === 'number'), 'NORMALIZED_SHAPE_MISMATCH',
    `${op}: normalizedShape must be a number or a non-empty array of numbers, got ${describe(normalizedShape)}`,
  );
  const tail = shape.slice(shape.length - dims.length);
  check(
    dims.length <= shape.length && dims.every((d, i) => d === tail[i]),
    'NORMALIZED_SHAPE_MISMATCH', `${op}: normalizedShape [${dims}] is not the trailing dims of input [${shape}]`,
  );
  const d = product(dims);
  const count = product(shape) / d;
  return { d, view: { o: count, p: 1, q: 1, s: d }, rows: columnRows(d, 1, count, 1, 0) };
}

export function layerNormSpec(shape: readonly number[], options: LayerNormOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'layerNorm options');
  const { d, view, rows } = trailingSpec('layerNorm', shape, opts.normalizedShape);
  const eps = checkEps(opts.eps ?? DEFAULT_EPS);
  checkParam('weight', opts.weight, d);
  checkParam('bias', opts.bias, d);
  return base('layerNorm', 'batch', view, rows, eps, 0, 1);
}

export function rmsNormSpec(shape: readonly number[], options: RmsNormOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'rmsNorm options');
  const { d, view, rows } = trailingSpec('rmsNorm', shape, opts.normalizedShape);
  const eps = checkEps(opts.eps ?? FLOAT32_EPS);
  checkParam('weight', opts.weight, d);
  return base('rmsNorm', 'rms', view, rows, eps, 0, 1);
}

/**
 * Moments over arbitrary axes, as long as the kept and reduced dims (size-1 dims aside)
 * collapse into the [kept, reduced, kept, reduced] view, e.g. (0, 2, 3) of NCHW, (0, 1, 2) of
 * NHWC, trailing dims, leading dims.
 */
export function momentsSpec(shape: readonly number[], options: MomentsOptions | undefined): NormSpec {
  const opts = checkOptions(options, 'moments options');
  const rank = shape.length;
  check(Array.isArray(opts.axes) && opts.axes.length > 0, 'INVALID_AXES', `moments needs a non-empty axes array, got axes ${describe(opts.axes)}`);
  check(opts.axes.every((a) => Number.isInteger(a)), 'INVALID_AXES', `axes [${opts.axes}] must be integers`);
  const axes = opts.axes.map((a) => (a < 0 ? a + rank : a));
  check(axes.every((a) => a >= 0 && a < rank), 'INVALID_AXES', `axes [${opts.axes}] out of range for rank ${rank}`);
  check(new Set(axes).size === axes.length, 'INVALID_AXES', `axes [${opts.axes}] repeat a dim`);
  const correction = checkNumber(opts.correction ?? 1, 'correction', { min: 0 });

  // Fill the slots O, P, Q, S (kept, reduced, kept, reduced) with runs of dims in order.
  const slots = [1, 1, 1, 1];
  let slot = 0;
  for (let i = 0; i < rank; i++) {
    if (shape[i] === 1) continue;
    const reduced = axes.includes(i) ? 1 : 0;
    while (slot < 4 && slot % 2 !== reduced) slot++;
    check(slot < 4, 'INVALID_AXES', `axes [${opts.axes}] of [${shape}] do not form a supported kept/reduced pattern`);
    slots[slot] *= shape[i];
    // A run continues in the same slot while dims of the same kind follow.
    if (i + 1 < rank && shape[i + 1] !== 1 && (axes.includes(i + 1) ? 1 : 0) !== reduced) slot++;
  }
  const view = { o: slots[0], p: slots[1], q: slots[2], s: slots[3] };
  const statsShape = shape.filter((_, i) => !axes.includes(i));
  return { ...base('moments', 'moments', view, columnRows(1, 1, 1, 0, 0), 0), correction, statsShape };
}
