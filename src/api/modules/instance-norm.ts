/**
 * `torch.nn.InstanceNorm1d/2d/3d`: statistics of each sample and channel. As in PyTorch, no
 * affine and no running statistics by default; with `trackRunningStats`, training mode also
 * updates running statistics with the batch average of the per-instance mean and unbiased
 * variance (as PyTorch's instance_norm does), and eval mode normalizes by them.
 */
import type { Engine } from '../engine';
import type { Tensor } from '../tensor';
import { NormBase, type NormBaseOptions } from './norm-base';
import { addInto } from './scale-add';

/**
 * Options of the InstanceNorm modules (PyTorch's constructor arguments): `affine` and
 * `trackRunningStats` default to false; `momentum: null` means 0 here (PyTorch passes 0 to
 * instance_norm; `numBatchesTracked` is kept for the state dict but never advances).
 */
export type InstanceNormModuleOptions = NormBaseOptions;

/** The shared implementation of InstanceNorm1d/2d/3d; the subclasses fix the input rank. */
export abstract class InstanceNorm extends NormBase {
  protected abstract readonly rank: number;

  constructor(engine: Engine, numFeatures: number, options?: InstanceNormModuleOptions) {
    super(engine, numFeatures, options, new.target.name, { affine: false, trackRunningStats: false });
  }

  /**
   * Normalize `x` ([N, C, ...spatial] or, channels-last, [N, ...spatial, C]; channels are
   * checked against `numFeatures` with an affine or running statistics, as PyTorch's would fail).
   */
  forward(x: Tensor): Tensor {
    this.input(x, [this.rank], this.affine || this.trackRunningStats ? this.numFeatures : null);
    const affine = { weight: this.weight?.data, bias: this.bias?.data, eps: this.eps };
    if (!this.training && this.trackRunningStats) return this.evalForward(x, affine);
    const { y, saved } = this.engine.normForward('instanceNorm', x, affine);
    if (this.training && this.trackRunningStats) this.#updateRunning(x);
    this.remember({ x, op: 'instanceNorm', options: affine, saved });
    return y;
  }

  /** running = (1 − m)·running + m·(mean over the batch of each instance's mean / unbiased variance). */
  #updateRunning(x: Tensor): void {
    const m = this.momentum ?? 0;
    const e = this.engine;
    const first = x.layout === 'channels-first';
    const spatial = Array.from({ length: x.shape.length - 2 }, (_, i) => i + (first ? 2 : 1));
    e.tidy(() => {
      const inst = e.moments(x, { axes: spatial, correction: 1 });
      const batchMean = (t: Tensor) => e.moments(t, { axes: [0], correction: 0 }).mean;
      // Channels-last instance statistics come out [N, C] too: the channel is the last kept dim.
      addInto(e, this.runningMean!, batchMean(inst.mean), m, 1 - m);
      addInto(e, this.runningVar!, batchMean(inst.variance), m, 1 - m);
    });
  }
}

/** `torch.nn.InstanceNorm1d(numFeatures)`: input [N, C, L] ([N, L, C] channels-last). */
export class InstanceNorm1d extends InstanceNorm {
  protected readonly rank = 3;
}

/** `torch.nn.InstanceNorm2d(numFeatures)`: input [N, C, H, W] ([N, H, W, C] channels-last). */
export class InstanceNorm2d extends InstanceNorm {
  protected readonly rank = 4;
}

/** `torch.nn.InstanceNorm3d(numFeatures)`: input [N, C, D, H, W] ([N, D, H, W, C] channels-last). */
export class InstanceNorm3d extends InstanceNorm {
  protected readonly rank = 5;
}
