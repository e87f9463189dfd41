import type { NormGpuError } from './errors';
import type { ImageInput } from './image-input';
import type { Moments64 } from './plan/moments64';
import type { PreprocessSpec } from './plan/preprocess';
import type { NormSpec } from './plan/spec';

/** What `engine.adapterInfo` reports. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU-backed adapter (SwiftShader, WARP, llvmpipe...): planned with the serial kernels. */
  software: boolean;
}

/** Where a tensor's floats live: host memory (CPU backend) or a GPU buffer (WebGPU backend). */
export type Storage =
  | { readonly kind: 'cpu'; readonly data: Float32Array }
  | {
    readonly kind: 'gpu';
    readonly buffer: GPUBuffer;
    readonly owned: boolean;
    /**
     * Settles to the GPU error (validation, out-of-memory, internal) raised by the work that
     * wrote this buffer or by any work it depended on, else null: reads reject with it.
     */
    readonly fault?: Promise<NormGpuError | null>;
  };

/** What a tensor needs from the engine that made it. */
export interface TensorOwner {
  readStorage(storage: Storage, size: number): Promise<Float32Array>;
  releaseStorage(storage: Storage): void;
  /** Throws DISPOSED_ENGINE or DEVICE_LOST once this backend can no longer run work. */
  assertUsable(): void;
  /** Submit the work recorded so far (WebGPU batches ops until a read or the end of the task). */
  flush(): void;
}

/** What `encode` returns: the callback's result and the release of the recorded temporaries. */
export interface Recording<T> {
  result: T;
  /** Give the temporaries back; call it once the encoder has been submitted. Idempotent. */
  release(): void;
}

/** Why a GPUDevice was lost, as its `lost` promise said. */
export interface DeviceLoss {
  reason: string;
  message: string;
}

/** Storages of one call's operands; parameters absent from the call are undefined. */
export interface NormOperands {
  x: Storage;
  weight?: Storage;
  bias?: Storage;
  /** Read in inference, updated in place by BatchNorm training. */
  runningMean?: Storage;
  runningVar?: Storage;
}

/** Statistics of the columns of a tensor viewed as [rows, width] (dataset statistics, scalers). */
export interface ColumnRequest {
  rows: number;
  width: number;
  /** Return one entry per column. */
  wantColumns: boolean;
  /** Also merge the column entries, viewed as [A, B, C] (width = A*B*C), over B. */
  groups?: readonly [number, number, number];
  /** Leave NaN out of each column's statistics (the scalers, as scikit-learn). */
  skipNaN: boolean;
}

/** The float64 statistics a ColumnRequest asked for. */
export interface ColumnMoments {
  columns: Moments64 | null;
  groups: Moments64 | null;
}

/**
 * The per-feature affine of the scalers on [rows, width] data: y = (x - a) * m + c with
 * (a, m, c) of feature f at lines[3f..3f+2] (float64), clamped to `clip` when given.
 */
export interface ScaleRequest {
  width: number;
  lines: Float64Array;
  clip?: readonly [number, number];
}

/** A batch of images read by a backend: `run` makes the output of images [start, end). */
export type PreparedImages = (sub: PreprocessSpec, start: number, end: number) => Storage;

/**
 * What each backend implements: the engine validates and plans, the backend executes. Every
 * op of every module goes through here; no module branches on a backend's class.
 */
export interface Backend extends TensorOwner {
  readonly kind: 'webgpu' | 'cpu';
  /** The adapter, or null on the CPU backend. */
  readonly info: AdapterSummary | null;
  /** The GPUDevice, or null on the CPU backend. */
  readonly device: GPUDevice | null;
  /** Largest tensor, in bytes, one buffer binding can hold (device limits on WebGPU). */
  readonly maxBindingBytes: number;
  /** The loss the device reported (never on the CPU backend), or null. */
  readonly lost: DeviceLoss | null;
  /** Called once when the device is lost while the backend is in use (not after dispose()). */
  onLost: ((loss: DeviceLoss) => void) | null;
  upload(data: Float32Array): Storage;
  /** Normalized output of `spec` (every mode but `moments`). */
  normalize(spec: NormSpec, operands: NormOperands): Storage;
  /** Per-group mean and variance (mode `moments`). */
  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage };
  /** The kernels a call would run, for `engine.explain`. */
  describe(spec: NormSpec): KernelChoice[];
  /** Compile, without blocking, every pipeline a call of `spec` with these affine operands will use. */
  prepare(spec: NormSpec, affine: { weight: boolean; bias: boolean }): Promise<void>;
  /** Run `fn` with its ops recorded into the caller's `encoder` (WebGPU only). */
  encode<T>(encoder: GPUCommandEncoder, fn: () => T): Recording<T>;
  /**
   * Image to tensor: read `sources` the way this backend takes them, with every check that
   * depends on the backend made here, before any work; the result runs parts of the batch.
   */
  preprocess(spec: PreprocessSpec, sources: readonly ImageInput[]): PreparedImages;
  /** Column statistics of `x` (see ColumnRequest), merged in float64. */
  columnMoments(x: Storage, request: ColumnRequest): Promise<ColumnMoments>;
  /** The scalers' per-feature affine of `x` (count elements). */
  scaleFeatures(x: Storage, count: number, request: ScaleRequest): Storage;
  /** Bytes held by live tensors and temporaries, and by the buffer pool (0 and 0 on the CPU). */
  memory(): { liveBytes: number; pooledBytes: number };
  /** Free the pooled buffers. */
  trim(): void;
  dispose(): void;
}

/** One stage of an execution plan, as `engine.explain` reports it. */
export interface KernelChoice {
  stage: string;
  variant: string;
  workgroups: readonly number[];
  why?: string;
}
