/**
 * Feature scalers with scikit-learn's semantics on `[samples, features]` data, on the GPU or
 * the CPU backend: `StandardScaler` and `MinMaxScaler` with `fit`, `partialFit`, `transform`,
 * `inverseTransform` and `fitTransform`.
 *
 * Fitting reduces each batch on the GPU (reduce_stats, merge_stats) and keeps the running
 * statistics in float64 on the host (Chan's update across `partialFit` calls), as
 * scikit-learn keeps float64 statistics. Transforms are one elementwise dispatch
 * (scale_features) whose subtraction comes first and carries the mean as a float32 pair, so
 * features far from zero keep their precision.
 *
 * ```ts
 * const scaler = new StandardScaler(engine);
 * const z = await scaler.fitTransform(x); // x: Tensor [samples, features]
 * ```
 */
import { check, NormGpuError } from '../errors';
import { COLUMN_KERNELS } from '../plan/column-stats';
import { mergeMoments64, type Moments64 } from '../plan/moments64';
import { checkShape } from '../plan/spec';
import { checkColumnWidth, columnMoments, columnRowsPerCall } from './column-moments';
import type { Engine } from './engine';
import { checkTensor, Tensor } from './tensor';
import { checkBoolean, checkEngine, checkFitsBinding, checkNumber, checkOptions, describe } from './validate';

/**
 * Scaler input: a 2-D tensor `[samples, features]` of the engine, or rows of numbers (NaN marks
 * a missing value). Host rows larger than one buffer binding of the device are fitted in row
 * chunks; a transform's output must fit one binding (TENSOR_TOO_LARGE otherwise).
 */
export type FeatureData = Tensor | readonly (readonly number[])[];

export interface StandardScalerOptions {
  /** Subtract the mean. Default: true. */
  withMean?: boolean;
  /** Divide by the standard deviation (ddof 0). Default: true. */
  withStd?: boolean;
}

export interface MinMaxScalerOptions {
  /** Target range `[min, max]`, min < max. Default: `[0, 1]`. */
  featureRange?: readonly [number, number];
  /** Clamp transformed values to featureRange. Default: false. */
  clip?: boolean;
}

const FLOAT64_EPS = 2 ** -52;

/** One line per feature, y = (x - offset) * mul + add, in float64. */
interface Lines {
  offset: Float64Array;
  mul: Float64Array;
  add: Float64Array;
}

/** Checked scaler input: a tensor of the engine, or host rows flattened to float32. */
interface Input {
  rows: number;
  features: number;
  tensor: Tensor | null;
  host: Float32Array | null;
}

/** Rows of numbers flattened, each value checked (INVALID_DATA: JS would turn '1' into 1 and 'a' into NaN). */
function flattenRows(x: readonly (readonly number[])[], rows: number, features: number): Float32Array {
  const out = new Float32Array(rows * features);
  for (let r = 0; r < rows; r++) {
    const row = x[r];
    for (let j = 0; j < features; j++) {
      const v: unknown = row[j];
      if (typeof v !== 'number') throw new NormGpuError('INVALID_DATA', `x[${r}][${j}] is ${describe(v)}, not a number`);
      out[r * features + j] = v;
    }
  }
  return out;
}

/**
 * What both scalers share: input handling, the float64 running moments and the transform
 * dispatch. Fitting ignores NaN, as scikit-learn does: each feature's statistics are of its
 * non-NaN values, and transforms leave NaN as NaN.
 */
abstract class FeatureScaler {
  readonly #engine: Engine;
  /** Float64 running statistics per feature (n counts its non-NaN values); null before fit. */
  protected moments: Moments64 | null = null;
  #rowsSeen = 0;

  constructor(engine: Engine) {
    this.#engine = checkEngine(engine);
  }

  /** Rows seen by fit/partialFit since the last fit, NaN or not (scikit-learn `n_samples_seen_` without NaN). */
  get nSamplesSeen(): number {
    return this.#rowsSeen;
  }

  /**
   * Per feature, the non-NaN values seen since the last fit (scikit-learn `n_samples_seen_`
   * with NaN in the data); null before fit.
   */
  get nSamplesSeenPerFeature(): Float64Array | null {
    return this.moments ? this.moments.n.slice() : null;
  }

  /** Features of the fitted data (`n_features_in_`), or null before fit. */
  get nFeaturesIn(): number | null {
    return this.moments ? this.moments.n.length : null;
  }

  /** Forget the statistics and fit on `x`. */
  async fit(x: FeatureData): Promise<this> {
    const input = this.#input(x, 'fit');
    this.moments = null;
    this.#rowsSeen = 0;
    return this.#accumulate(input);
  }

  /** Update the statistics with one more batch of samples. */
  async partialFit(x: FeatureData): Promise<this> {
    return this.#accumulate(this.#input(x, 'partialFit'));
  }

  /** Scale `x` with the fitted statistics; the result is a new tensor. */
  transform(x: FeatureData): Tensor {
    return this.#apply(x, false);
  }

  /** Undo `transform`. */
  inverseTransform(x: FeatureData): Tensor {
    return this.#apply(x, true);
  }

  /** `fit(x)` then `transform(x)`. */
  async fitTransform(x: FeatureData): Promise<Tensor> {
    // Host rows are uploaded once, for both steps.
    const input = this.#upload(this.#input(x, 'fitTransform'));
    try {
      await this.fit(input.tensor);
      return this.transform(input.tensor);
    } finally {
      input.release();
    }
  }

  /** The transform's lines (inverse: false) from the fitted statistics. */
  protected abstract lines(): Lines;
  /** The range to clamp transformed values to, if any. */
  protected abstract clipRange(): readonly [number, number] | undefined;

  /** Every check of a call on `x`, before any GPU work; host rows come back flattened. */
  #input(x: FeatureData, use: 'fit' | 'partialFit' | 'transform' | 'fitTransform'): Input {
    const backend = this.#engine.internalBackend;
    let shape: readonly number[];
    if (x instanceof Tensor) {
      shape = checkTensor(backend, x, 'x').shape;
    } else {
      check(Array.isArray(x), 'INVALID_ARGUMENT', `x must be a [samples, features] Tensor or an array of rows, got ${describe(x)}`);
      check(x.length > 0 && Array.isArray(x[0]), 'INVALID_SHAPE', `x must be a non-empty array of rows (arrays of numbers), got x[0] ${describe(x[0])}`);
      shape = [x.length, x[0].length];
      const ragged = x.findIndex((r) => !Array.isArray(r) || r.length !== shape[1]);
      check(ragged < 0, 'INVALID_SHAPE', `x[${ragged}] is ${describe(x[ragged])}, rows must be arrays of x[0]'s ${shape[1]} values`);
      checkShape(shape, 'x');
    }
    check(shape.length === 2, 'INVALID_SHAPE', `x must be 2-D [samples, features], got [${shape}]`);
    const [rows, features] = shape;
    if (use === 'transform') check(this.moments, 'NOT_FITTED', 'the scaler is not fitted: call fit or partialFit first');
    const fitted = this.nFeaturesIn;
    if (use !== 'fit' && use !== 'fitTransform' && fitted !== null) {
      check(features === fitted, 'FEATURE_MISMATCH', `x has ${features} features, the scaler was fitted on ${fitted}`);
    }
    if (use !== 'transform') checkColumnWidth(backend, features, 'x');
    // A transform's output is one tensor, so host rows must fit one binding; fits go by chunks.
    if (use === 'transform' || use === 'fitTransform') checkFitsBinding(backend, rows * features * 4, `x of [${rows}, ${features}]`);
    if (x instanceof Tensor) return { rows, features, tensor: x, host: null };
    return { rows, features, tensor: null, host: flattenRows(x as readonly (readonly number[])[], rows, features) };
  }

  /** The input as one tensor: host rows uploaded (checked to fit), to release after use. */
  #upload(input: Input): { tensor: Tensor; rows: number; features: number; release(): void } {
    const { rows, features } = input;
    if (input.tensor) return { tensor: input.tensor, rows, features, release: () => {} };
    const tensor = this.#engine.tensor(input.host!, [rows, features]);
    return { tensor, rows, features, release: () => tensor.dispose() };
  }

  /**
   * Merge the statistics of `input` into the running ones. Host rows beyond one binding go up
   * in row chunks whose work is all queued before the first result is awaited; the chunks'
   * float64 statistics then merge exactly as partialFit calls would.
   */
  async #accumulate(input: Input): Promise<this> {
    const backend = this.#engine.internalBackend;
    const { rows, features, tensor, host } = input;
    const work: Promise<{ columns: Moments64 | null }>[] = [];
    if (tensor) {
      work.push(columnMoments(backend, tensor, rows, features, true, undefined, true));
    } else {
      const step = columnRowsPerCall(backend, features);
      for (let a = 0; a < rows; a += step) {
        const b = Math.min(rows, a + step);
        const chunk = this.#engine.tensor(host!.subarray(a * features, b * features), [b - a, features]);
        try {
          work.push(columnMoments(backend, chunk, b - a, features, true, undefined, true));
        } finally {
          chunk.dispose();
        }
      }
    }
    for (const { columns } of await Promise.all(work)) {
      this.moments = this.moments ? mergeMoments64(this.moments, columns!) : columns!;
    }
    this.#rowsSeen += rows;
    return this;
  }

  #apply(x: FeatureData, inverse: boolean): Tensor {
    const input = this.#upload(this.#input(x, 'transform'));
    try {
      const l = this.lines();
      const f = input.features;
      // Forward y = (x - offset) * mul + add; inverse x = (y - add) / mul + offset.
      const line = (i: number): [number, number, number] => (inverse ? [l.add[i], 1 / l.mul[i], l.offset[i]] : [l.offset[i], l.mul[i], l.add[i]]);
      const clip = inverse ? undefined : this.clipRange();
      const lines = new Float64Array(f * 3);
      for (let i = 0; i < f; i++) lines.set(line(i), i * 3);
      const storage = this.#engine.internalBackend.scaleFeatures(input.tensor.storage, input.tensor.size, { width: f, lines, clip, kernel: COLUMN_KERNELS.scaleFeatures });
      return this.#engine.internalTensor(storage, input.tensor.shape, input.tensor.layout, inverse ? 'inverseTransform' : 'transform');
    } finally {
      input.release();
    }
  }
}

/**
 * scikit-learn `StandardScaler`: z = (x - mean) / scale, scale = sqrt(var) with ddof 0, and
 * scale 1 for constant features (scikit-learn's test: var <= n*eps*var + (n*mean*eps)^2).
 */
export class StandardScaler extends FeatureScaler {
  readonly withMean: boolean;
  readonly withStd: boolean;

  constructor(engine: Engine, options: StandardScalerOptions = {}) {
    super(engine);
    const o = checkOptions(options, 'StandardScaler options');
    this.withMean = checkBoolean(o.withMean, 'withMean', true);
    this.withStd = checkBoolean(o.withStd, 'withStd', true);
  }

  /**
   * Per-feature mean of the non-NaN values (`mean_`), NaN for a feature without any; null
   * before fit, or when neither withMean nor withStd.
   */
  get mean(): Float64Array | null {
    if (!this.moments || (!this.withMean && !this.withStd)) return null;
    const { n, mean } = this.moments;
    return mean.map((m, i) => (n[i] > 0 ? m : NaN));
  }

  /** Per-feature variance, ddof 0 (`var_`); null before fit or without withStd. */
  get var(): Float64Array | null {
    if (!this.moments || !this.withStd) return null;
    const { n, m2 } = this.moments;
    return m2.map((v, i) => v / n[i]);
  }

  /** Per-feature scale (`scale_`): sqrt(var), 1 for constant features; null before fit or without withStd. */
  get scale(): Float64Array | null {
    const v = this.var;
    if (!v || !this.moments) return null;
    const { n, mean } = this.moments;
    return v.map((vi, i) => {
      // scikit-learn passes this mask to _handle_zeros_in_scale, which then skips its own
      // `scale < 10 * eps` test: a tiny but non-constant spread keeps its scale.
      const constant = vi <= n[i] * FLOAT64_EPS * vi + (n[i] * mean[i] * FLOAT64_EPS) ** 2;
      return constant ? 1 : Math.sqrt(vi);
    });
  }

  protected lines(): Lines {
    const f = this.moments!.n.length;
    const scale = this.scale;
    return {
      offset: this.withMean ? this.mean! : new Float64Array(f),
      mul: scale ? scale.map((s) => 1 / s) : new Float64Array(f).fill(1),
      add: new Float64Array(f),
    };
  }

  protected clipRange(): undefined {
    return undefined;
  }
}

/**
 * scikit-learn `MinMaxScaler`: y = (x - dataMin) * scale + featureRange[0] with
 * scale = (max - min of the range) / (dataMax - dataMin), a zero data range counting as 1.
 * That is scikit-learn's `x * scale_ + min_` with the subtraction first.
 */
export class MinMaxScaler extends FeatureScaler {
  readonly featureRange: readonly [number, number];
  readonly clip: boolean;

  constructor(engine: Engine, options: MinMaxScalerOptions = {}) {
    super(engine);
    const o = checkOptions(options, 'MinMaxScaler options');
    const r = o.featureRange ?? [0, 1];
    check(Array.isArray(r) && r.length === 2, 'INVALID_ARGUMENT', `featureRange must be [min, max], got ${describe(r)}`);
    r.forEach((v, i) => checkNumber(v, `featureRange[${i}]`));
    check(r[0] < r[1], 'INVALID_ARGUMENT', `featureRange must be [min, max] with min < max, got [${r}]`);
    this.featureRange = [r[0], r[1]];
    this.clip = checkBoolean(o.clip, 'clip', false);
  }

  /** Per-feature minimum of the non-NaN values seen (`data_min_`), NaN for a feature without any; null before fit. */
  get dataMin(): Float64Array | null {
    return this.moments ? this.moments.min.map((v, i) => (this.moments!.n[i] > 0 ? v : NaN)) : null;
  }

  /** Per-feature maximum of the non-NaN values seen (`data_max_`), NaN for a feature without any; null before fit. */
  get dataMax(): Float64Array | null {
    return this.moments ? this.moments.max.map((v, i) => (this.moments!.n[i] > 0 ? v : NaN)) : null;
  }

  /** `data_range_`: dataMax - dataMin. */
  get dataRange(): Float64Array | null {
    const [lo, hi] = [this.dataMin, this.dataMax];
    return lo && hi ? hi.map((v, i) => v - lo[i]) : null;
  }

  /** `scale_`: (range max - range min) / dataRange, a range below 10 eps counting as 1. */
  get scale(): Float64Array | null {
    const r = this.dataRange;
    const span = this.featureRange[1] - this.featureRange[0];
    return r ? r.map((v) => span / (v < 10 * FLOAT64_EPS ? 1 : v)) : null;
  }

  /** `min_`: featureRange[0] - dataMin * scale. */
  get min(): Float64Array | null {
    const [s, lo] = [this.scale, this.dataMin];
    return s && lo ? s.map((si, i) => this.featureRange[0] - lo[i] * si) : null;
  }

  protected lines(): Lines {
    const f = this.moments!.n.length;
    return { offset: this.dataMin!, mul: this.scale!, add: new Float64Array(f).fill(this.featureRange[0]) };
  }

  protected clipRange(): readonly [number, number] | undefined {
    return this.clip ? this.featureRange : undefined;
  }
}
