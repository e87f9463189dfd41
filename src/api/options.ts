import type { Tensor } from './tensor';

/** Where the channel axis sits: PyTorch's default `[N, C, ...spatial]`, or `[N, ...spatial, C]`. */
export type Layout = 'channels-first' | 'channels-last';

/** Per-channel or per-element parameters: a Tensor of this engine, or host data uploaded per call. */
export type TensorLike = Tensor | Float32Array | readonly number[];

/** Options of `createEngine`. */
export interface EngineOptions {
  /** `'auto'` (default) takes WebGPU when an adapter can be had, else the CPU backend. */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** A device to use as is (interop with other WebGPU libraries); normgpu never destroys it. */
  device?: GPUDevice;
  /** Adapter request hint when normgpu makes its own device. Default: `'high-performance'`. */
  powerPreference?: GPUPowerPreference;
  /**
   * Kernel family: `'auto'` (default) picks by adapter, `'parallel'` forces the cooperating
   * workgroup kernels, `'serial'` the one-thread-per-group kernels that suit software adapters.
   */
  kernels?: 'auto' | 'parallel' | 'serial';
}

/** `torch.nn.functional.batch_norm`. */
export interface BatchNormOptions {
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
export interface LayerNormOptions {
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
export interface RmsNormOptions {
  /** The trailing dims to normalize over (a number means one dim). */
  normalizedShape: number | readonly number[];
  /** Elementwise scale of shape `normalizedShape`. Default: none (1). */
  weight?: TensorLike;
  /** Default: float32 machine epsilon (1.1920929e-7), as PyTorch's `eps=None`. */
  eps?: number;
}

/** `torch.nn.functional.instance_norm` (statistics of each sample and channel). */
export interface InstanceNormOptions {
  /** Per-channel scale. Default: none (1). */
  weight?: TensorLike;
  /** Per-channel shift. Default: none (0). */
  bias?: TensorLike;
  /** Default: 1e-5. */
  eps?: number;
}

/** `torch.nn.functional.group_norm`. */
export interface GroupNormOptions {
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
}

/** Result of `moments`: tensors with the reduced axes removed. */
export interface Moments {
  mean: Tensor;
  variance: Tensor;
}

export const DEFAULT_EPS = 1e-5;
export const DEFAULT_MOMENTUM = 0.1;
/** `torch.finfo(torch.float32).eps`, PyTorch's rms_norm default. */
export const FLOAT32_EPS = 1.1920928955078125e-7;
