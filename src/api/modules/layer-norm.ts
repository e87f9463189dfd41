/** `torch.nn.LayerNorm` and `torch.nn.RMSNorm`: normalization over the trailing `normalizedShape` dims. */
import { checkBoolean, checkNumber, checkOptions } from '../../plan/checks';
import { DEFAULT_EPS } from '../../plan/options';
import { checkShape } from '../../plan/spec';
import type { Engine } from '../engine';
import type { Tensor } from '../tensor';
import { Module } from './module';

/** Options of `LayerNorm` (PyTorch's constructor arguments). */
export interface LayerNormModuleOptions {
  /** Added to the variance. Default: 1e-5. */
  eps?: number;
  /** A learnable elementwise `weight` (ones) and, with `bias`, `bias` (zeros). Default: true. */
  elementwiseAffine?: boolean;
  /** With `elementwiseAffine`, a learnable `bias` too. Default: true. */
  bias?: boolean;
}

/** Options of `RMSNorm` (PyTorch's constructor arguments). */
export interface RmsNormModuleOptions {
  /** Added to the mean square. Default: null, float32 machine epsilon (as PyTorch's `eps=None`). */
  eps?: number | null;
  /** A learnable elementwise `weight` (ones). Default: true. */
  elementwiseAffine?: boolean;
}

/** A checked normalizedShape: a positive integer or a non-empty array of them. */
function checkNormalizedShape(shape: unknown): number[] {
  const dims = typeof shape === 'number' ? [shape] : shape;
  checkShape(dims as number[], 'normalizedShape');
  return [...(dims as number[])];
}

/** `torch.nn.LayerNorm(normalizedShape)`: statistics of each sample over its trailing dims. */
export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(engine: Engine, normalizedShape: number | readonly number[], options?: LayerNormModuleOptions) {
    super(engine);
    const o = checkOptions(options, 'LayerNorm options');
    this.normalizedShape = Object.freeze(checkNormalizedShape(normalizedShape));
    this.eps = checkNumber(o.eps ?? DEFAULT_EPS, 'eps', { min: 0, code: 'INVALID_EPS' });
    this.elementwiseAffine = checkBoolean(o.elementwiseAffine, 'elementwiseAffine', true);
    const bias = checkBoolean(o.bias, 'bias', true);
    if (this.elementwiseAffine) {
      this.addParameter('weight', this.normalizedShape, 1);
      if (bias) this.addParameter('bias', this.normalizedShape, 0);
    }
  }

  /** Normalize `x` over its trailing `normalizedShape` dims (in storage order, whatever the layout). */
  forward(x: Tensor): Tensor {
    this.input(x);
    const options = { normalizedShape: this.normalizedShape, weight: this.weight?.data, bias: this.bias?.data, eps: this.eps };
    const { y, saved } = this.engine.normForward('layerNorm', x, options);
    this.remember({ x, op: 'layerNorm', options, saved });
    return y;
  }
}

/** `torch.nn.RMSNorm(normalizedShape)`: `y = x / sqrt(mean(x²) + eps) * weight` over the trailing dims. */
export class RMSNorm extends Module {
  readonly normalizedShape: readonly number[];
  /** null: float32 machine epsilon. */
  readonly eps: number | null;
  readonly elementwiseAffine: boolean;

  constructor(engine: Engine, normalizedShape: number | readonly number[], options?: RmsNormModuleOptions) {
    super(engine);
    const o = checkOptions(options, 'RMSNorm options');
    this.normalizedShape = Object.freeze(checkNormalizedShape(normalizedShape));
    this.eps = o.eps === undefined || o.eps === null ? null : checkNumber(o.eps, 'eps', { min: 0, code: 'INVALID_EPS' });
    this.elementwiseAffine = checkBoolean(o.elementwiseAffine, 'elementwiseAffine', true);
    if (this.elementwiseAffine) this.addParameter('weight', this.normalizedShape, 1);
  }

  /** Normalize `x` over its trailing `normalizedShape` dims. */
  forward(x: Tensor): Tensor {
    this.input(x);
    const options = { normalizedShape: this.normalizedShape, weight: this.weight?.data, eps: this.eps ?? undefined };
    const { y, saved } = this.engine.normForward('rmsNorm', x, options);
    this.remember({ x, op: 'rmsNorm', options, saved });
    return y;
  }
}
