/**
 * Feature scalers with scikit-learn's semantics on `[samples, features]` data, on the GPU or
 * the CPU backend: `StandardScaler` and `MinMaxScaler` with `fit`, `partialFit`, `transform`,
 * `inverseTransform` and `fitTransform`.
 *
 * Fitting reduces each batch on the GPU (column_stats, merge_stats) and keeps the running
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
import { check } from '../errors';
import { scaleFeatures } from '../cpu/column-stats';
import { WebGpuBackend } from '../gpu/backend';
import { scaleFeaturesGpu } from '../gpu/column-stats';
import { mergeMoments64, type Moments64 } from '../plan/moments64';
import { checkShape } from '../plan/spec';
import { columnMoments } from './column-moments';
import type { Engine } from './engine';
import { checkTensor, Tensor, type Storage } from './tensor';

/** Scaler input: a 2-D tensor `[samples, features]` of the engine, or rows of numbers. */
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

/** What both scalers share: input handling, the float64 running moments and the transform dispatch. */
abstract class FeatureScaler {
  readonly #engine: Engine;
  /** Float64 running statistics per feature; null before fit. */
  protected moments: Moments64 | null = null;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  /** Samples seen by fit/partialFit since the last fit (scikit-learn `n_samples_seen_`). */
  get nSamplesSeen(): number {
    return this.moments ? this.moments.n[0] ?? 0 : 0;
  }

  /** Features of the fitted data (`n_features_in_`), or null before fit. */
  get nFeaturesIn(): number | null {
    return this.moments ? this.moments.n.length : null;
  }

  /** Forget the statistics and fit on `x`. */
  async fit(x: FeatureData): Promise<this> {
    const input = this.#input(x, 'fit');
    try {
      this.moments = null;
      return await this.#accumulate(input);
    } finally {
      input.release();
    }
  }

  /** Update the statistics with one more batch of samples. */
  async partialFit(x: FeatureData): Promise<this> {
    const input = this.#input(x, 'partialFit');
    try {
      return await this.#accumulate(input);
    } finally {
      input.release();
    }
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
    const input = this.#input(x, 'fit');
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

  #input(x: FeatureData, use: 'fit' | 'partialFit' | 'transform'): { tensor: Tensor; rows: number; features: number; release(): void } {
    const backend = this.#engine.internalBackend;
    let shape: readonly number[];
    if (x instanceof Tensor) {
      shape = checkTensor(backend, x, 'x').shape;
    } else {
      check(Array.isArray(x) && x.length > 0 && Array.isArray(x[0]), 'INVALID_SHAPE', 'x must be a [samples, features] Tensor or a non-empty array of rows');
      shape = [x.length, x[0].length];
      check(x.every((r) => Array.isArray(r) && r.length === shape[1]), 'INVALID_SHAPE', 'x rows must all have the same length');
      checkShape(shape, 'x');
    }
    check(shape.length === 2, 'INVALID_SHAPE', `x must be 2-D [samples, features], got [${shape}]`);
    const [rows, features] = shape;
    if (use === 'transform') check(this.moments, 'NOT_FITTED', 'the scaler is not fitted: call fit or partialFit first');
    const fitted = this.nFeaturesIn;
    if (use !== 'fit' && fitted !== null) {
      check(features === fitted, 'FEATURE_MISMATCH', `x has ${features} features, the scaler was fitted on ${fitted}`);
    }
    // Every check has passed: only now is host data uploaded.
    if (x instanceof Tensor) return { tensor: x, rows, features, release: () => {} };
    const tensor = this.#engine.tensor(Float32Array.from(x.flat()), [rows, features]);
    return { tensor, rows, features, release: () => tensor.dispose() };
  }

  async #accumulate(input: { tensor: Tensor; rows: number; features: number }): Promise<this> {
    const backend = this.#engine.internalBackend;
    const { columns } = await columnMoments(backend, input.tensor, input.rows, input.features, true);
    this.moments = this.moments ? mergeMoments64(this.moments, columns!) : columns!;
    return this;
  }

  #apply(x: FeatureData, inverse: boolean): Tensor {
    const input = this.#input(x, 'transform');
    try {
      const l = this.lines();
      const f = input.features;
      // Forward y = (x - offset) * mul + add; inverse x = (y - add) / mul + offset.
      const line = (i: number): [number, number, number] => (inverse ? [l.add[i], 1 / l.mul[i], l.offset[i]] : [l.offset[i], l.mul[i], l.add[i]]);
      const clip = inverse ? undefined : this.clipRange();
      const backend = this.#engine.internalBackend;
      let storage: Storage;
      if (backend instanceof WebGpuBackend) {
        const coeffs = new Float32Array(f * 4);
        for (let i = 0; i < f; i++) {
          const [a, m, c] = line(i);
          // The offset as a float32 pair: the high part, then the residue it leaves.
          const hi = Math.fround(a);
          coeffs.set([hi, a - hi, m, c], i * 4);
        }
        storage = { kind: 'gpu', buffer: scaleFeaturesGpu(backend, input.tensor.buffer, input.tensor.size, f, coeffs, clip), owned: true };
      } else {
        const coeffs = new Float64Array(f * 4);
        for (let i = 0; i < f; i++) {
          const [a, m, c] = line(i);
          coeffs.set([a, 0, m, c], i * 4);
        }
        const data = input.tensor.storage;
        if (data.kind !== 'cpu') throw new Error('internal: GPU storage given to the CPU backend');
        storage = { kind: 'cpu', data: scaleFeatures(data.data, f, coeffs, clip) };
      }
      return new Tensor(backend, storage, input.tensor.shape, input.tensor.layout);
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
    check(options !== null && typeof options === 'object', 'INVALID_ARGUMENT', 'options must be an object');
    this.withMean = options.withMean ?? true;
    this.withStd = options.withStd ?? true;
  }

  /** Per-feature mean (`mean_`); null before fit, or when neither withMean nor withStd. */
  get mean(): Float64Array | null {
    if (!this.moments || (!this.withMean && !this.withStd)) return null;
    return this.moments.mean.slice();
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
      offset: this.withMean ? this.moments!.mean.slice() : new Float64Array(f),
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
    check(options !== null && typeof options === 'object', 'INVALID_ARGUMENT', 'options must be an object');
    const r = options.featureRange ?? [0, 1];
    check(
      Array.isArray(r) && r.length === 2 && r.every((v) => typeof v === 'number' && Number.isFinite(v)) && r[0] < r[1],
      'INVALID_ARGUMENT', `featureRange must be [min, max] with min < max, got ${JSON.stringify(r)}`,
    );
    this.featureRange = [r[0], r[1]];
    this.clip = options.clip ?? false;
  }

  /** Per-feature minimum seen (`data_min_`); null before fit. */
  get dataMin(): Float64Array | null {
    return this.moments ? this.moments.min.slice() : null;
  }

  /** Per-feature maximum seen (`data_max_`); null before fit. */
  get dataMax(): Float64Array | null {
    return this.moments ? this.moments.max.slice() : null;
  }

  /** `data_range_`: dataMax - dataMin. */
  get dataRange(): Float64Array | null {
    return this.moments ? this.moments.max.map((hi, i) => hi - this.moments!.min[i]) : null;
  }

  /** `scale_`: (range max - range min) / dataRange, a range below 10 eps counting as 1. */
  get scale(): Float64Array | null {
    const r = this.dataRange;
    const span = this.featureRange[1] - this.featureRange[0];
    return r ? r.map((v) => span / (v < 10 * FLOAT64_EPS ? 1 : v)) : null;
  }

  /** `min_`: featureRange[0] - dataMin * scale. */
  get min(): Float64Array | null {
    const s = this.scale;
    return s ? s.map((si, i) => this.featureRange[0] - this.moments!.min[i] * si) : null;
  }

  protected lines(): Lines {
    const f = this.moments!.n.length;
    return { offset: this.moments!.min.slice(), mul: this.scale!, add: new Float64Array(f).fill(this.featureRange[0]) };
  }

  protected clipRange(): readonly [number, number] | undefined {
    return this.clip ? this.featureRange : undefined;
  }
}
