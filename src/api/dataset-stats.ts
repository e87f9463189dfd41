/**
 * Dataset statistics: a streaming accumulator fed batch by batch (images or tensors) that
 * gives per-channel mean, std (biased and unbiased), min and max, and the mean and std images.
 *
 * Each batch is reduced on the GPU (column_stats, merge_stats: shifted float32 Welford in short
 * chunks, merged in a tree) and the few partials are read back and Chan-merged into a float64
 * running aggregate on the host, so millions of images at a 1e4 offset lose nothing. The
 * aggregate is a plain serializable object (`partial()`) that merges with others
 * (`mergeDatasetStats`): shards computed by several workers, tabs or machines combine into the
 * statistics of the whole, as synchronized BatchNorm does across devices.
 *
 * ```ts
 * const stats = new DatasetStats(engine, { transform: { resize: 256, centerCrop: 224 } });
 * for (const batch of batches) await stats.add(batch);
 * const { mean, std } = await stats.result(); // on [0, 1]: ready for preprocess({ mean, std })
 * ```
 */
import { check } from '../errors';
import { emptyMoments64, mergeEntry, type Moments64 } from '../plan/moments64';
import type { PreprocessOptions } from '../plan/preprocess';
import { columnMoments } from './column-moments';
import type { Engine } from './engine';
import { planPreprocess, preprocess, type ImageSource } from './preprocess';
import { checkTensor, Tensor } from './tensor';

/** How image sources are turned into values: `preprocess` options without normalization. */
export type DatasetTransform = Omit<PreprocessOptions, 'preset' | 'mean' | 'std' | 'layout'>;

/** What the progress callback gets after each batch. */
export interface DatasetProgress {
  /** Images merged so far. */
  images: number;
  /** `options.total`, or null. */
  total: number | null;
  elapsedMs: number;
  imagesPerSecond: number;
}

export interface DatasetStatsOptions {
  /**
   * Applied to image sources (not to tensors): resize, crop, channel order and scale. Default
   * scale 1/255, so statistics are on [0, 1] as torchvision's `Normalize` expects them.
   */
  transform?: DatasetTransform;
  /** Keep per-pixel statistics for the mean and std images. Default: true. */
  pixelStats?: boolean;
  /** Expected number of images, passed on to `onProgress`. */
  total?: number;
  onProgress?: (progress: DatasetProgress) => void;
}

/**
 * Partial statistics: a plain JSON-serializable value. Sums of squared deviations (`m2`) and
 * means are float64; two partials merge with Chan's update (`mergeDatasetStats`).
 */
export interface DatasetStatsPartial {
  format: 'normgpu-dataset-stats-1';
  /** Images merged; 0 for an empty partial (whose dims are then 0). */
  images: number;
  channels: number;
  height: number;
  width: number;
  /** Per channel: values counted (images * height * width), mean, M2, min, max. */
  channel: { count: number; mean: number[]; m2: number[]; min: number[]; max: number[] };
  /** Per value of the [C, H, W] image (count = images), or null without pixel statistics. */
  pixel: { mean: number[]; m2: number[] } | null;
}

/** Final statistics. Variances and std are per channel; the images are [C, H, W]. */
export interface DatasetStatsResult {
  images: number;
  channels: number;
  height: number;
  width: number;
  mean: number[];
  /** Biased (population) std: sqrt(M2 / n). */
  std: number[];
  /** Unbiased std: sqrt(M2 / (n - 1)); NaN for n = 1. */
  stdUnbiased: number[];
  variance: number[];
  varianceUnbiased: number[];
  min: number[];
  max: number[];
  /** Mean over images of every value, [C, H, W]; null without pixel statistics. */
  meanImage: Float32Array | null;
  /** Biased std over images of every value, [C, H, W]; null without pixel statistics. */
  stdImage: Float32Array | null;
}

const FORMAT = 'normgpu-dataset-stats-1';

/** The statistics of no images (dims 0): the identity of `mergeDatasetStats`. */
export function emptyDatasetStats(): DatasetStatsPartial {
  return { format: FORMAT, images: 0, channels: 0, height: 0, width: 0, channel: { count: 0, mean: [], m2: [], min: [], max: [] }, pixel: null };
}

function checkPartial(p: DatasetStatsPartial, name: string): void {
  check(p !== null && typeof p === 'object' && p.format === FORMAT, 'STATS_MISMATCH', `${name} is not a normgpu dataset-statistics partial`);
  const c = p.channels;
  const values = c * p.height * p.width;
  check(
    p.channel.mean.length === c && p.channel.m2.length === c && p.channel.min.length === c && p.channel.max.length === c
      && (p.pixel === null || (p.pixel.mean.length === values && p.pixel.m2.length === values)),
    'STATS_MISMATCH', `${name} has arrays of the wrong length for ${c}x${p.height}x${p.width}`,
  );
}

/**
 * Merge two partials into the statistics of both (Chan's update in float64). Throws
 * STATS_MISMATCH for different channels or resolution, or one with pixel statistics and one
 * without.
 */
export function mergeDatasetStats(a: DatasetStatsPartial, b: DatasetStatsPartial): DatasetStatsPartial {
  checkPartial(a, 'first partial');
  checkPartial(b, 'second partial');
  if (b.images === 0) return structuredCloneOf(a);
  if (a.images === 0) return structuredCloneOf(b);
  check(
    a.channels === b.channels && a.height === b.height && a.width === b.width, 'STATS_MISMATCH',
    `cannot merge statistics of ${a.channels}x${a.height}x${a.width} and ${b.channels}x${b.height}x${b.width} images`,
  );
  check((a.pixel === null) === (b.pixel === null), 'STATS_MISMATCH', 'one partial has pixel statistics and the other not');
  const channel = toMoments(a.channel.count, a.channel);
  mergeMomentsFrom(channel, toMoments(b.channel.count, b.channel));
  let pixel: DatasetStatsPartial['pixel'] = null;
  if (a.pixel && b.pixel) {
    const m = toMoments(a.images, a.pixel);
    mergeMomentsFrom(m, toMoments(b.images, b.pixel));
    pixel = { mean: Array.from(m.mean), m2: Array.from(m.m2) };
  }
  return {
    format: FORMAT, images: a.images + b.images, channels: a.channels, height: a.height, width: a.width,
    channel: { count: a.channel.count + b.channel.count, ...channelArrays(channel) }, pixel,
  };
}

/** The final statistics of a partial (e.g. of merged shards). */
export function finalizeDatasetStats(p: DatasetStatsPartial): DatasetStatsResult {
  checkPartial(p, 'partial');
  const n = p.channel.count;
  const variance = p.channel.m2.map((m2) => (n > 0 ? m2 / n : NaN));
  const varianceUnbiased = p.channel.m2.map((m2) => (n > 1 ? m2 / (n - 1) : NaN));
  return {
    images: p.images, channels: p.channels, height: p.height, width: p.width,
    mean: n > 0 ? [...p.channel.mean] : p.channel.mean.map(() => NaN),
    std: variance.map(Math.sqrt),
    stdUnbiased: varianceUnbiased.map(Math.sqrt),
    variance,
    varianceUnbiased,
    min: [...p.channel.min],
    max: [...p.channel.max],
    meanImage: p.pixel ? Float32Array.from(p.pixel.mean) : null,
    stdImage: p.pixel ? Float32Array.from(p.pixel.m2, (m2) => Math.sqrt(m2 / p.images)) : null,
  };
}

function structuredCloneOf(p: DatasetStatsPartial): DatasetStatsPartial {
  return JSON.parse(JSON.stringify(p)) as DatasetStatsPartial;
}

function toMoments(count: number, s: { mean: number[]; m2: number[]; min?: number[]; max?: number[] }): Moments64 {
  const m = emptyMoments64(s.mean.length);
  m.n.fill(count);
  m.mean.set(s.mean);
  m.m2.set(s.m2);
  if (s.min) m.min.set(s.min);
  if (s.max) m.max.set(s.max);
  return m;
}

function mergeMomentsFrom(into: Moments64, b: Moments64, index: (i: number) => number = (i) => i): void {
  for (let i = 0; i < b.n.length; i++) mergeEntry(into, index(i), b.n[i], b.mean[i], b.m2[i], b.min[i], b.max[i]);
}

function channelArrays(m: Moments64): { mean: number[]; m2: number[]; min: number[]; max: number[] } {
  return { mean: Array.from(m.mean), m2: Array.from(m.m2), min: Array.from(m.min), max: Array.from(m.max) };
}

/** A streaming accumulator of dataset statistics on one engine. */
export class DatasetStats {
  readonly #engine: Engine;
  readonly #transform: DatasetTransform;
  readonly #pixelStats: boolean;
  readonly #total: number | null;
  readonly #onProgress?: (progress: DatasetProgress) => void;
  #dims: { c: number; h: number; w: number } | null = null;
  #images = 0;
  #channel: Moments64 | null = null;
  #pixel: Moments64 | null = null;
  #pending: Promise<void> = Promise.resolve();
  #failure: unknown = null;
  #start = 0;

  constructor(engine: Engine, options: DatasetStatsOptions = {}) {
    check(options !== null && typeof options === 'object', 'INVALID_ARGUMENT', 'options must be an object');
    const transform = options.transform ?? {};
    const bad = (['preset', 'mean', 'std', 'layout'] as const).filter((k) => k in (transform as object));
    check(bad.length === 0, 'INVALID_ARGUMENT', `transform takes no ${bad.join(', ')}: statistics are of the unnormalized values`);
    check(
      options.total === undefined || (Number.isInteger(options.total) && options.total >= 0), 'INVALID_ARGUMENT',
      `total must be a non-negative integer, got ${String(options.total)}`,
    );
    check(options.onProgress === undefined || typeof options.onProgress === 'function', 'INVALID_ARGUMENT', 'onProgress must be a function');
    this.#engine = engine;
    this.#transform = transform;
    this.#pixelStats = options.pixelStats ?? true;
    this.#total = options.total ?? null;
    this.#onProgress = options.onProgress;
  }

  /** Images merged so far (batches whose `add` has resolved). */
  get images(): number {
    return this.#images;
  }

  /**
   * Add a batch: image sources (preprocessed with `options.transform`) or a tensor
   * `[N, C, H, W]` (channels-last `[N, H, W, C]` by its layout) of values as they are. Every
   * batch must have the first one's channels and resolution. The GPU work is queued at once;
   * the promise resolves when the batch is merged. Calls may overlap: batches merge in call order.
   */
  add(batch: ImageSource | readonly ImageSource[] | Tensor): Promise<void> {
    const backend = this.#engine.internalBackend;
    const options = { ...this.#transform, layout: 'channels-first' } as const;
    // Shape and dims are checked before any GPU work: images by their plan.
    const given = batch instanceof Tensor ? checkTensor(backend, batch, 'batch') : null;
    const shape = given?.shape ?? planPreprocess(batch as ImageSource | readonly ImageSource[], options).outputShape;
    check(shape.length === 4, 'INVALID_SHAPE', `a batch tensor must be [N, C, H, W] (or channels-last), got [${shape}]`);
    const last = given?.layout === 'channels-last';
    const [n, c, h, w] = last ? [shape[0], shape[3], shape[1], shape[2]] : shape;
    const dims = this.#dims ?? { c, h, w };
    check(
      dims.c === c && dims.h === h && dims.w === w, 'STATS_MISMATCH',
      `batch of ${c}x${h}x${w} images (CxHxW), earlier batches ${dims.c}x${dims.h}x${dims.w}`,
    );
    this.#dims = dims;
    const tensor = given ?? preprocess(this.#engine, batch as ImageSource | readonly ImageSource[], options);
    try {
      if (this.#start === 0) this.#start = now();
      const hw = h * w;
      const groups: [number, number, number] = last ? [1, hw, c] : [c, hw, 1];
      const work = columnMoments(backend, tensor, n, c * hw, this.#pixelStats, groups);
      const merged = this.#pending.then(async () => {
        const r = await work;
        this.#merge(n, c, hw, last, r.columns, r.groups!);
      });
      // The chain continues after a failure; the failure is reported by this add and by result().
      this.#pending = merged.catch((e: unknown) => { this.#failure ??= e; });
      return merged;
    } finally {
      if (!given) tensor.dispose();
    }
  }

  #merge(n: number, c: number, hw: number, channelsLast: boolean, columns: Moments64 | null, channel: Moments64): void {
    this.#channel ??= emptyMoments64(c);
    mergeMomentsFrom(this.#channel, channel);
    if (columns) {
      this.#pixel ??= emptyMoments64(c * hw);
      // Pixel statistics are kept [C, H, W] whatever the batch layout.
      mergeMomentsFrom(this.#pixel, columns, channelsLast ? (i) => (i % c) * hw + Math.floor(i / c) : undefined);
    }
    this.#images += n;
    if (this.#onProgress) {
      const elapsedMs = now() - this.#start;
      this.#onProgress({
        images: this.#images, total: this.#total, elapsedMs, imagesPerSecond: elapsedMs > 0 ? (this.#images * 1000) / elapsedMs : 0,
      });
    }
  }

  /** The statistics so far as a serializable partial (waits for batches still in flight). */
  async partial(): Promise<DatasetStatsPartial> {
    await this.#pending;
    if (this.#failure) throw this.#failure;
    const d = this.#dims;
    if (!d || !this.#channel) return emptyDatasetStats();
    return {
      format: FORMAT, images: this.#images, channels: d.c, height: d.h, width: d.w,
      channel: { count: this.#channel.n[0], ...channelArrays(this.#channel) },
      pixel: this.#pixel ? { mean: Array.from(this.#pixel.mean), m2: Array.from(this.#pixel.m2) } : null,
    };
  }

  /** The final statistics so far (waits for batches still in flight). */
  async result(): Promise<DatasetStatsResult> {
    return finalizeDatasetStats(await this.partial());
  }
}

function now(): number {
  return globalThis.performance?.now() ?? Date.now();
}
