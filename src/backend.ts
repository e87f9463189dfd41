import type { NormGpuError } from './errors';
import type { DType } from './half';
import type { ImageInput } from './image-input';
import type { Moments64 } from './plan/moments64';
import type { PreprocessKernels, PreprocessSpec } from './plan/preprocess';
import type { ColumnKernels } from './plan/column-stats';
import type { KernelDef } from './stage-def';
import type { NormSpec } from './plan/spec';
import type { GradSpec } from './plan/grad';
import type { AffineOperands, StageTraffic } from './plan/traffic';
import type { Tuner } from './plan/tuning';

/** What `engine.adapterInfo` reports. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU-backed adapter (SwiftShader, WARP, llvmpipe...): planned with the serial kernels. */
  software: boolean;
}

/**
 * Where a tensor's floats live: host memory (CPU backend) or a GPU buffer (WebGPU backend).
 * `dtype` (absent: float32) says how: float16 data is a Float32Array of half values on the
 * CPU, and halves packed two per 4-byte word (the last one padded) in a GPU buffer.
 */
export type Storage =
  | { readonly kind: 'cpu'; readonly data: Float32Array; readonly dtype?: DType }
  | {
    readonly kind: 'gpu';
    readonly dtype?: DType;
    readonly buffer: GPUBuffer;
    readonly owned: boolean;
    /**
     * For a wrapped buffer (not owned): called once when its tensor goes, after the work that
     * reads it has been submitted (its owner may then reuse it).
     */
    readonly onRelease?: () => void;
    /**
     * Settles to the GPU error (validation, out-of-memory, internal) raised by the work that
     * wrote this buffer or by any work it depended on, else null: reads reject with it.
     */
    readonly fault?: Promise<NormGpuError | null>;
  };

/** Whether two storages are views of the same memory (one GPU buffer, or one host array). */
export function sameMemory(a: Storage, b: Storage): boolean {
  return a.kind === 'gpu' ? b.kind === 'gpu' && a.buffer === b.buffer : b.kind === 'cpu' && a.data.buffer === b.data.buffer;
}

/** What a tensor needs from the engine that made it. */
export interface TensorOwner {
  /** The values of a storage of `size` elements, as float32 whatever its dtype. */
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
  /** Added to x before the statistics (spec.residual), of x's dtype. */
  residual?: Storage;
}

/** Storages of a backward's operands (see plan/grad.ts). */
export interface GradOperands {
  dy: Storage;
  x: Storage;
  weight?: Storage;
  /** Saved per-group statistics; the mean is absent for RMSNorm. */
  mean?: Storage;
  rstd: Storage;
}

/** The gradients a backward's output mask asked for. */
export interface GradStorages {
  dx?: Storage;
  dweight?: Storage;
  dbias?: Storage;
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
  /** The merge stages (COLUMN_KERNELS), handed over with the call so that only its users bundle them. */
  kernels: ColumnKernels;
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
  /** The affine stage (COLUMN_KERNELS.scaleFeatures). */
  kernel: KernelDef;
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
  /** A float32 tensor of `data`, or a float16 one of the half bits in a Uint16Array. */
  upload(data: Float32Array | Uint16Array): Storage;
  /** Normalized output of `spec` (every mode but `moments`). */
  normalize(spec: NormSpec, operands: NormOperands): Storage;
  /** The same, and the sum x + residual the statistics were taken of (spec.residual). */
  normalizeWithSum(spec: NormSpec, operands: NormOperands): { y: Storage; sum: Storage };
  /** A copy of the `count` elements of `x` in `dtype` (to float16: rounded to nearest even). */
  cast(x: Storage, count: number, dtype: DType): Storage;
  /**
   * alpha·a + beta·b over `count` float32 elements (b null: alpha·a; alpha 1 without b is a
   * bit-exact copy). A new storage, or with `inPlace` b's own memory rewritten and returned
   * with this op's fault: b is then required and must not share a's memory.
   */
  axpby(a: Storage, alpha: number, b: Storage | null, beta: number, count: number, options?: { inPlace?: boolean }): Storage;
  /** Per-group mean and variance (mode `moments`). */
  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage };
  /**
   * The float32 per-group mean and rstd a forward of `spec` saves for its backward: of x, or of
   * the running statistics for BatchNorm inference (RMSNorm's mean is zeros). Updates nothing.
   */
  savedStats(spec: NormSpec, operands: NormOperands): { mean: Storage; rstd: Storage };
  /** The gradients of the forward `spec.norm` that `spec.outputs` asks for. */
  backward(spec: GradSpec, operands: GradOperands): GradStorages;
  /**
   * The stages a backward would run and their traffic, for `engine.explainBackward`; without
   * `saved` statistics, those computing them from x first.
   */
  describeBackward(spec: GradSpec, saved: boolean): KernelChoice[];
  /** Compile, without blocking, every pipeline a backward of `spec` and normForward's saved statistics use. */
  prepareBackward(spec: GradSpec): Promise<void>;
  /** Autotuning (src/plan/tuning.ts): the WebGPU backend's tuner, null on the CPU backend. */
  readonly tuner: Tuner | null;
  /** The kernels a call with these affine operands would run, and their traffic, for `engine.explain`. */
  describe(spec: NormSpec, affine: AffineOperands): KernelChoice[];
  /** Compile, without blocking, every pipeline a call of `spec` with these affine operands will use. */
  prepare(spec: NormSpec, affine: { weight: boolean; bias: boolean }): Promise<void>;
  /** Run `fn` with its ops recorded into the caller's `encoder` (WebGPU only). */
  encode<T>(encoder: GPUCommandEncoder, fn: () => T): Recording<T>;
  /**
   * Image to tensor: read `sources` the way this backend takes them, with every check that
   * depends on the backend made here, before any work; the result runs parts of the batch.
   * `kernels` (PREPROCESS_KERNELS) come with the call so that only its users bundle them.
   */
  preprocess(spec: PreprocessSpec, sources: readonly ImageInput[], kernels: PreprocessKernels): PreparedImages;
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

/** One stage of an execution plan, as `engine.explain` reports it, with its bytes and dispatches. */
export interface KernelChoice extends StageTraffic {
  stage: string;
  variant: string;
  workgroups: readonly number[];
  why?: string;
}
