/**
 * The options of the normalization ops, in PyTorch's names, and their defaults: the specs
 * (`spec.ts`) validate and resolve them; the API re-exports them.
 */
import type { DType } from '../half';

export type { DType } from '../half';

/** Where the channel axis sits: PyTorch's default `[N, C, ...spatial]`, or `[N, ...spatial, C]`. */
export type Layout = 'channels-first' | 'channels-last';

/**
 * Host float data: a Float32Array as is, a Float64Array or a number[] converted to float32.
 * Other typed arrays and arrays holding non-numbers are rejected (INVALID_DATA); NaN and
 * infinities are values like any other.
 */
export type FloatData = Float32Array | Float64Array | readonly number[];

/**
 * A tensor as the specs see it: its shape and layout (the engine checks that it is a live
 * Tensor of its own).
 */
export interface TensorHandle {
  readonly shape: readonly number[];
  readonly size: number;
  readonly layout: Layout;
  /** Element type; absent means float32. */
  readonly dtype?: DType;
}

/** Per-channel or per-element parameters: a Tensor of this engine, or host data uploaded per call. */
export type TensorLike = TensorHandle | FloatData;

/** A TensorHandle, told apart from host data by shape. */
export function isTensorHandle(t: unknown): t is TensorHandle {
  return typeof t === 'object' && t !== null && !Array.isArray(t) && !ArrayBuffer.isView(t)
    && typeof (t as { size?: unknown }).size === 'number' && Array.isArray((t as { shape?: unknown }).shape);
}

/** An activation applied after the affine: `F.relu`, `F.silu`, `F.gelu` (erf) or `F.gelu(approximate='tanh')`. */
export type Activation = 'relu' | 'silu' | 'gelu' | 'gelu_tanh';

/**
 * Fused epilogues of every normalization op (forward). With `residual`, the op normalizes
 * h = x + residual (rounded as the input dtype's add rounds it) and can return h as well.
 */
export interface EpilogueOptions {
  /** A Tensor of the input's shape, layout and dtype added to it before the statistics. Default: none. */
  residual?: TensorHandle;
  /** Return `{ y, sum }` with sum = x + residual (needs `residual`). Default: false (the op returns y). */
  returnSum?: boolean;
  /** Applied elementwise after the affine. Default: none. */
  activation?: Activation;
  /** Element type of the output. Default: the input's. */
  outputDtype?: DType;
}

/** `torch.nn.functional.batch_norm`. */
export interface BatchNormOptions extends EpilogueOptions {
  /** Per-channel running mean. Required when `training` is false; updated in place when training. */
  runningMean?: TensorLike;
  /** Per-channel running variance (unbiased). As `runningMean`. */
  runningVar?: TensorLike;
  /** Per-channel scale (gamma). Default: none (1). */
  weight?: TensorLike;
  /** Per-channel shift (beta). Default: none (0). */
  bias?: TensorLike;
  /** Normalize with batch statistics and update the running ones. Default: false. */
  training?: boolean;
  /** Running-statistics update factor in [0, 1]. Default: 0.1. */
  momentum?: number;
  /** Added to the variance. Default: 1e-5. */
  eps?: number;
}

/** `torch.nn.functional.layer_norm`. */
export interface LayerNormOptions extends EpilogueOptions {
  /** The trailing dims to normalize over (a number means one dim). */
  normalizedShape: number | readonly number[];
  /** Elementwise scale of shape `normalizedShape`. Default: none (1). */
  weight?: TensorLike;
  /** Elementwise shift of shape `normalizedShape`. Default: none (0). */
  bias?: TensorLike;
  /** Default: 1e-5. */
  eps?: number;
}

/** `torch.nn.functional.rms_norm`: `y = x / sqrt(mean(x²) + eps) * weight`. */
export interface RmsNormOptions extends EpilogueOptions {
  /** The trailing dims to normalize over (a number means one dim). */
  normalizedShape: number | readonly number[];
  /** Elementwise scale of shape `normalizedShape`. Default: none (1). */
  weight?: TensorLike;
  /** Default: float32 machine epsilon (1.1920929e-7), as PyTorch's `eps=None`. */
  eps?: number;
}

/** `torch.nn.functional.instance_norm` (statistics of each sample and channel). */
export interface InstanceNormOptions extends EpilogueOptions {
  /** Per-channel scale. Default: none (1). */
  weight?: TensorLike;
  /** Per-channel shift. Default: none (0). */
  bias?: TensorLike;
  /** Default: 1e-5. */
  eps?: number;
}

/** `torch.nn.functional.group_norm`. */
export interface GroupNormOptions extends EpilogueOptions {
  /** Number of channel groups; must divide the channel count. */
  numGroups: number;
  /** Per-channel scale. Default: none (1). */
  weight?: TensorLike;
  /** Per-channel shift. Default: none (0). */
  bias?: TensorLike;
  /** Default: 1e-5. */
  eps?: number;
}

/** `torch.var_mean(x, dim=axes, correction)`. */
export interface MomentsOptions {
  /** Axes of the stored shape to reduce over (negative counts from the end). */
  axes: readonly number[];
  /** Bessel correction subtracted from the count: 1 (default, unbiased, as PyTorch) or 0 (biased). */
  correction?: number;
  /** Element type of mean and variance. Default: the input's. */
  outputDtype?: DType;
}

export const DEFAULT_EPS = 1e-5;
export const DEFAULT_MOMENTUM = 0.1;
/** `torch.finfo(torch.float32).eps`, PyTorch's rms_norm default. */
export const FLOAT32_EPS = 1.1920928955078125e-7;
