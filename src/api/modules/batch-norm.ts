/**
 * `torch.nn.BatchNorm1d/2d/3d`: batch statistics in training mode, with running mean and
 * (unbiased) variance updated by `momentum` or, with `momentum: null`, as the cumulative moving
 * average over `numBatchesTracked`; running statistics in eval mode, unless `trackRunningStats`
 * is false, in which case batch statistics are used in both modes (PyTorch's semantics).
 */
import type { Engine } from '../engine';
import type { Tensor } from '../tensor';
import { NormBase, type NormBaseOptions } from './norm-base';

/** Options of the BatchNorm modules (PyTorch's constructor arguments; `affine` and `trackRunningStats` default to true). */
export type BatchNormModuleOptions = NormBaseOptions;

/** The shared implementation of BatchNorm1d/2d/3d; the subclasses fix the input ranks. */
export abstract class BatchNorm extends NormBase {
  /** Input ranks the subclass accepts. */
  protected abstract readonly ranks: readonly number[];

  constructor(engine: Engine, numFeatures: number, options?: BatchNormModuleOptions) {
    super(engine, numFeatures, options, new.target.name, { affine: true, trackRunningStats: true });
  }

  /**
   * Normalize `x` ([N, C, ...] or, channels-last, [N, ..., C]). Training mode normalizes by the
   * batch statistics and, when tracking, updates the running ones and `numBatchesTracked`.
   */
  forward(x: Tensor): Tensor {
    this.input(x, this.ranks, this.numFeatures);
    const affine = { weight: this.weight?.data, bias: this.bias?.data, eps: this.eps };
    if (!this.training && this.trackRunningStats) return this.evalForward(x, affine);
    const update = this.training && this.trackRunningStats;
    const tracked = this.numBatchesTracked + (update ? 1 : 0);
    const running = update ? { runningMean: this.runningMean!, runningVar: this.runningVar!, momentum: this.momentum ?? 1 / tracked } : {};
    const { y, saved } = this.engine.normForward('batchNorm', x, { ...affine, training: true, ...running });
    this.numBatchesTracked = tracked;
    this.remember({ x, op: 'batchNorm', options: { ...affine, training: true }, saved });
    return y;
  }
}

/** `torch.nn.BatchNorm1d(numFeatures)`: input [N, C] or [N, C, L] ([N, L, C] channels-last). */
export class BatchNorm1d extends BatchNorm {
  protected readonly ranks = [2, 3];
}

/** `torch.nn.BatchNorm2d(numFeatures)`: input [N, C, H, W] ([N, H, W, C] channels-last). */
export class BatchNorm2d extends BatchNorm {
  protected readonly ranks = [4];
}

/** `torch.nn.BatchNorm3d(numFeatures)`: input [N, C, D, H, W] ([N, D, H, W, C] channels-last). */
export class BatchNorm3d extends BatchNorm {
  protected readonly ranks = [5];
}
