import type { Storage, TensorOwner } from './api/tensor';
import type { NormSpec } from './plan/spec';

/** Storages of one call's operands; parameters absent from the call are undefined. */
export interface NormOperands {
  x: Storage;
  weight?: Storage;
  bias?: Storage;
  /** Read in inference, updated in place by BatchNorm training. */
  runningMean?: Storage;
  runningVar?: Storage;
}

/** What each backend implements: the engine validates and plans, the backend executes. */
export interface Backend extends TensorOwner {
  readonly kind: 'webgpu' | 'cpu';
  upload(data: Float32Array): Storage;
  /** Normalized output of `spec` (every mode but `moments`). */
  normalize(spec: NormSpec, operands: NormOperands): Storage;
  /** Per-group mean and variance (mode `moments`). */
  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage };
  /** The kernels a call would run, for `engine.explain`. */
  describe(spec: NormSpec): KernelChoice[];
  dispose(): void;
}

/** One stage of an execution plan, as `engine.explain` reports it. */
export interface KernelChoice {
  stage: string;
  variant: string;
  workgroups: readonly number[];
  why?: string;
}
