/**
 * What BatchNorm and InstanceNorm share (PyTorch's `_NormBase`): `numFeatures`, `eps`,
 * `momentum`, the optional affine parameters and running statistics, and `num_batches_tracked`.
 */
import { checkBoolean, checkNumber, checkOptions } from '../../plan/checks';
import { DEFAULT_EPS, DEFAULT_MOMENTUM } from '../../plan/options';
import type { Engine } from '../engine';
import type { Tensor } from '../tensor';
import { Module } from './module';

/** Options of the BatchNorm and InstanceNorm modules (PyTorch's constructor arguments). */
export interface NormBaseOptions {
  /** Added to the variance. Default: 1e-5. */
  eps?: number;
  /**
   * Running-statistics update factor in [0, 1], or null for the cumulative moving average
   * (factor 1 / numBatchesTracked). Default: 0.1.
   */
  momentum?: number | null;
  /** A learnable per-channel `weight` (ones) and `bias` (zeros). Default: true for BatchNorm, false for InstanceNorm. */
  affine?: boolean;
  /**
   * Keep `running_mean` (zeros), `running_var` (ones) and `num_batches_tracked`; without them,
   * eval mode normalizes by batch statistics too. Default: true for BatchNorm, false for InstanceNorm.
   */
  trackRunningStats?: boolean;
}

export abstract class NormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  /** Training-mode batches seen while tracking running statistics (PyTorch's `num_batches_tracked`). */
  numBatchesTracked = 0;

  /** Checks `options` (named after `name` in errors) with the subclass's `defaults`. */
  protected constructor(
    engine: Engine, numFeatures: number, options: NormBaseOptions | undefined, name: string,
    defaults: { affine: boolean; trackRunningStats: boolean },
  ) {
    super(engine);
    const o = checkOptions(options, `${name} options`);
    this.numFeatures = checkNumber(numFeatures, 'numFeatures', { min: 1, integer: true });
    this.eps = checkNumber(o.eps ?? DEFAULT_EPS, 'eps', { min: 0, code: 'INVALID_EPS' });
    this.momentum = o.momentum === null ? null : checkNumber(o.momentum ?? DEFAULT_MOMENTUM, 'momentum', { min: 0, max: 1, code: 'INVALID_MOMENTUM' });
    this.affine = checkBoolean(o.affine, 'affine', defaults.affine);
    this.trackRunningStats = checkBoolean(o.trackRunningStats, 'trackRunningStats', defaults.trackRunningStats);
    if (this.affine) {
      this.addParameter('weight', [this.numFeatures], 1);
      this.addParameter('bias', [this.numFeatures], 0);
    }
    if (this.trackRunningStats) {
      this.addBuffer('running_mean', [this.numFeatures], 0);
      this.addBuffer('running_var', [this.numFeatures], 1);
    }
  }

  /** The running mean, or null when running statistics are not tracked. */
  get runningMean(): Tensor | null {
    return this.buffer('running_mean') ?? null;
  }

  /** The running (unbiased) variance, or null when running statistics are not tracked. */
  get runningVar(): Tensor | null {
    return this.buffer('running_var') ?? null;
  }

  /** Eval mode with running statistics: BatchNorm inference, for BatchNorm and InstanceNorm alike. */
  protected evalForward(x: Tensor, affine: { weight?: Tensor; bias?: Tensor; eps: number }): Tensor {
    const options = { ...affine, training: false, runningMean: this.runningMean!, runningVar: this.runningVar! };
    const y = this.engine.batchNorm(x, options);
    this.remember({ x, op: 'batchNorm', options });
    return y;
  }

  protected override counters(): Record<string, number> {
    return this.trackRunningStats ? { num_batches_tracked: this.numBatchesTracked } : {};
  }

  protected override setCounter(_name: string, value: number): void {
    this.numBatchesTracked = value;
  }
}
