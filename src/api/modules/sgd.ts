/** `torch.optim.SGD` without momentum: the smallest optimizer that makes the modules trainable. */
import { check } from '../../errors';
import { checkNumber, checkOptions, describe } from '../../plan/checks';
import { Parameter } from './module';
import { addInto } from './scale-add';

/** Options of `SGD`. */
export interface SgdOptions {
  /** Learning rate (> 0 not required: any finite number). */
  lr: number;
  /** L2 penalty added to each gradient as `weightDecay · data`. Default: 0. */
  weightDecay?: number;
}

/**
 * Plain stochastic gradient descent: `step()` sets each parameter's `data` to
 * `data − lr · (grad + weightDecay · data)`, in place (one axpby pass, nothing allocated, so a
 * step inside `engine.tidy` is safe), skipping parameters without a gradient, as PyTorch does.
 */
export class SGD {
  readonly parameters: readonly Parameter[];
  readonly lr: number;
  readonly weightDecay: number;

  constructor(parameters: Iterable<Parameter>, options: SgdOptions) {
    const o = checkOptions(options, 'SGD options');
    this.parameters = [...parameters];
    for (const p of this.parameters) check(p instanceof Parameter, 'INVALID_ARGUMENT', `SGD takes Parameters, got ${describe(p)}`);
    this.lr = checkNumber(o.lr, 'lr');
    this.weightDecay = checkNumber(o.weightDecay ?? 0, 'weightDecay', { min: 0 });
  }

  /** One descent step with the accumulated gradients. */
  step(): void {
    for (const p of this.parameters) {
      // data − lr·(grad + wd·data) = (1 − lr·wd)·data − lr·grad
      if (p.grad) addInto(p.engine, p.data, p.grad, -this.lr, 1 - this.lr * this.weightDecay);
    }
  }

  /** Drop every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
}
