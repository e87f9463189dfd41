import type { Tensor } from './tensor';
import type { TuningJSON } from '../plan/tuning';
import type { AutotuneOptions } from './tuning';

export { DEFAULT_EPS, DEFAULT_MOMENTUM, FLOAT32_EPS } from '../plan/options';
export type {
  BatchNormOptions, FloatData, GroupNormOptions, InstanceNormOptions, LayerNormOptions, Layout, MomentsOptions, RmsNormOptions,
  TensorHandle, TensorLike,
} from '../plan/options';
export type { Activation, DType, EpilogueOptions } from '../plan/options';

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
  /**
   * Autotuning (WebGPU backend, `kernels: 'auto'`): time the candidate kernel families of each
   * shape class once on this adapter and plan later calls of the class with the fastest.
   * A class is measured in the background on its first call (which runs the planner's default)
   * or, awaited, by `engine.prepare`; `engine.explain(...).tuning` says what was chosen and
   * why, `engine.tuning()` exports the table. Results change only within the accuracy bar.
   * Cost: no trial run starts once `budgetMs` (default 500) have passed since a class's tuning
   * began, so each class costs at most that plus one run of its slowest candidate, once.
   * Default: false (the planner's choice by adapter class; results and plans deterministic).
   */
  autotune?: boolean | AutotuneOptions;
  /**
   * A table from `engine.tuning()` (of this or an earlier session): its winners are used
   * without timing, also with `autotune` off. Entries for other adapters are kept, unused.
   */
  tuning?: TuningJSON;
  /**
   * When the GPUDevice is lost (driver reset, another library destroying it): `'throw'`
   * (default) every later call and pending read rejects with DEVICE_LOST; `'cpu'` the engine
   * continues on the CPU backend; `'recreate'` it requests a fresh device of its own (the CPU
   * backend if none can be had). Tensors of the lost device are gone in every case: listen for
   * the engine's `devicelost` / `devicerestored` events to upload them again.
   */
  onDeviceLost?: 'throw' | 'cpu' | 'recreate';
  /**
   * Most bytes of free GPU buffers kept for reuse (WebGPU backend). Past it, the least recently
   * released buffers are destroyed, and a buffer larger than it is never pooled; `0` disables
   * pooling, `Infinity` removes the cap. `engine.trim()` empties the pool. Default: 256 MiB,
   * room for an input and output of the largest tensor a browser's default limits allow.
   */
  poolBytes?: number;
  /**
   * Log one `console.warn` for each tensor the garbage collector reclaims without `dispose()`,
   * naming its shape and the op that made it (its memory is taken back either way; wrapped
   * buffers are not warned about). Default: false.
   */
  warnLeaks?: boolean;
}

/** Result of `moments`: tensors with the reduced axes removed. */
export interface Moments {
  mean: Tensor;
  variance: Tensor;
}
