/** `torch.nn.GroupNorm`: statistics of each sample over groups of channels, in either layout. */
import { check } from '../../errors';
import { checkBoolean, checkNumber, checkOptions } from '../../plan/checks';
import { DEFAULT_EPS } from '../../plan/options';
import type { Engine } from '../engine';
import type { Tensor } from '../tensor';
import { Module } from './module';

/** Options of `GroupNorm` (PyTorch's constructor arguments). */
export interface GroupNormModuleOptions {
  /** Added to the variance. Default: 1e-5. */
  eps?: number;
  /** A learnable per-channel `weight` (ones) and `bias` (zeros). Default: true. */
  affine?: boolean;
}

/** `torch.nn.GroupNorm(numGroups, numChannels)`: input [N, C, ...] ([N, ..., C] channels-last). */
export class GroupNorm extends Module {
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;
  readonly affine: boolean;

  constructor(engine: Engine, numGroups: number, numChannels: number, options?: GroupNormModuleOptions) {
    super(engine);
    const o = checkOptions(options, 'GroupNorm options');
    this.numGroups = checkNumber(numGroups, 'numGroups', { min: 1, integer: true });
    this.numChannels = checkNumber(numChannels, 'numChannels', { min: 1, integer: true });
    check(this.numChannels % this.numGroups === 0, 'GROUPS_NOT_DIVISIBLE', `numGroups ${this.numGroups} does not divide numChannels ${this.numChannels}`);
    this.eps = checkNumber(o.eps ?? DEFAULT_EPS, 'eps', { min: 0, code: 'INVALID_EPS' });
    this.affine = checkBoolean(o.affine, 'affine', true);
    if (this.affine) {
      this.addParameter('weight', [this.numChannels], 1);
      this.addParameter('bias', [this.numChannels], 0);
    }
  }

  /** Normalize `x` (at least 2-D, `numChannels` channels in its layout). */
  forward(x: Tensor): Tensor {
    this.input(x, null, this.numChannels);
    const options = { numGroups: this.numGroups, weight: this.weight?.data, bias: this.bias?.data, eps: this.eps };
    const { y, saved } = this.engine.normForward('groupNorm', x, options);
    this.remember({ x, op: 'groupNorm', options, saved });
    return y;
  }
}
