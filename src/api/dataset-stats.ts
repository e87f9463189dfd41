/**
 * Dataset statistics: a streaming accumulator fed batch by batch (images or tensors) that
 * gives per-channel mean, std (biased and unbiased), min and max, and the mean and std images.
 *
 * Each batch is reduced on the GPU (stage 1 of the normalization path over the pixel columns,
 * then merge_stats: shifted float32 Welford in blocked chunks, merged in a tree) and the few partials are read back and Chan-merged into a float64
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
import { checkPreprocessOptions, type PreprocessOptions } from '../plan/preprocess';
import { checkColumnWidth, columnMoments, columnRowsPerCall } from './column-moments';
import type { Engine } from './engine';
import { preparePreprocess, type ImageSource } from './preprocess';
import { checkTensor, Tensor } from './tensor';
import { checkBoolean, checkEngine, checkNumber, checkOptions, describe } from './validate';

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

/**
 * A partial as `partial()` makes them (it may have been through JSON): INVALID_ARGUMENT for
 * what is not an object, STATS_MISMATCH for an object that is not a well-formed partial.
 */
function checkPartial(p: DatasetStatsPartial, name: string): void {
  check(p !== null && typeof p === 'object', 'INVALID_ARGUMENT', `${name} must be a dataset-statistics partial, got ${describe(p)}`);
  check(p.format === FORMAT, 'STATS_MISMATCH', `${name} is not a normgpu dataset-statistics partial (format ${describe(p.format)})`);
  const count = (v: unknown, field: string) => checkNumber(v, `${name}.${field}`, { min: 0, integer: true, code: 'STATS_MISMATCH' });
  const [images, c, h, w] = [count(p.images, 'images'), count(p.channels, 'channels'), count(p.height, 'height'), count(p.width, 'width')];
  const numbers = (v: unknown, length: number, field: string) => {
    check(
      Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'number'), 'STATS_MISMATCH',
      `${name}.${field} must be ${length} numbers for ${c}x${h}x${w} images, got ${describe(v)}`,
    );
  };
  const ch = p.channel;
  check(ch !== null && typeof ch === 'object', 'STATS_MISMATCH', `${name}.channel must be an object, got ${describe(ch)}`);
  check(count(ch.count, 'channel.count') === images * h * w, 'STATS_MISMATCH', `${name}.channel.count ${ch.count} is not images x height x width`);
  for (const k of ['mean', 'm2', 'min', 'max'] as const) numbers(ch[k], c, `channel.${k}`);
  const px = p.pixel;
  check(px === null || typeof px === 'object', 'STATS_MISMATCH', `${name}.pixel must be null or an object, got ${describe(px)}`);
  if (px) for (const k of ['mean', 'm2'] as const) numbers(px[k], c * h * w, `pixel.${k}`);
}

/**
 * Merge two partials into the statistics of both (Chan's update in float64). Throws
 * STATS_MISMATCH for different channels or resolution, or one with pixel statistics and one
 * without.
 */
export function mergeDatasetStats(a: DatasetStatsPartial, b: DatasetStatsPartial): DatasetStatsPartial {
  checkPartial(a, 'first partial');
  checkPartial(b, 'second partial');
  if (b.images === 0) return copyPartial(a);
  if (a.images === 0) return copyPartial(b);
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

/** A copy that shares no arrays with `p` (keeping NaN and infinities, which JSON would not). */
function copyPartial(p: DatasetStatsPartial): DatasetStatsPartial {
  const { channel: ch, pixel: px } = p;
  return {
    ...p,
    channel: { count: ch.count, mean: [...ch.mean], m2: [...ch.m2], min: [...ch.min], max: [...ch.max] },
    pixel: px && { mean: [...px.mean], m2: [...px.m2] },
  };
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
    this.#engine = checkEngine(engine);
    const o = checkOptions(options, 'DatasetStats options');
    const transform = checkOptions(o.transform, 'transform');
    const bad = (['preset', 'mean', 'std', 'layout'] as const).filter((k) => k in transform);
    check(bad.length === 0, 'INVALID_ARGUMENT', `transform takes no ${bad.join(', ')}: statistics are of the unnormalized values`);
    // Checked now rather than at the first add.
    checkPreprocessOptions({ ...transform, layout: 'channels-first' });
    if (o.total !== undefined) checkNumber(o.total, 'total', { min: 0, integer: true });
    check(o.onProgress === undefined || typeof o.onProgress === 'function', 'INVALID_ARGUMENT', `onProgress must be a function, got ${describe(o.onProgress)}`);
    this.#transform = transform;
    this.#pixelStats = checkBoolean(o.pixelStats, 'pixelStats', true);
    this.#total = o.total ?? null;
    this.#onProgress = o.onProgress;
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
   * Images whose tensor would exceed one buffer binding of the device are reduced in parts.
   */
  add(batch: ImageSource | readonly ImageSource[] | Tensor): Promise<void> {
    const backend = this.#engine.internalBackend;
    // Everything is checked before any GPU work: a tensor as it is, images by their plan.
    const given = batch instanceof Tensor ? checkTensor(backend, batch, 'batch') : null;
    const images = given ? null : preparePreprocess(this.#engine, batch as ImageSource | readonly ImageSource[], { ...this.#transform, layout: 'channels-first' });
    const shape = given?.shape ?? images!.spec.outputShape;
    check(shape.length === 4, 'INVALID_SHAPE', `a batch tensor must be [N, C, H, W] (or channels-last), got [${shape}]`);
    const last = given?.layout === 'channels-last';
    const [n, c, h, w] = last ? [shape[0], shape[3], shape[1], shape[2]] : shape;
    const dims = this.#dims ?? { c, h, w };
    check(
      dims.c === c && dims.h === h && dims.w === w, 'STATS_MISMATCH',
      `batch of ${c}x${h}x${w} images (CxHxW), earlier batches ${dims.c}x${dims.h}x${dims.w}`,
    );
    const hw = h * w;
    checkColumnWidth(backend, c * hw, 'batch');
    this.#dims = dims;
    if (this.#start === 0) this.#start = now();
    const groups: [number, number, number] = last ? [1, hw, c] : [c, hw, 1];
    const moments = (t: Tensor, rows: number) => columnMoments(backend, t, rows, c * hw, this.#pixelStats, groups);
    // A tensor fits one binding; images go in parts that do, all queued before any is awaited.
    const work: ReturnType<typeof moments>[] = [];
    if (given) work.push(moments(given, n));
    const step = columnRowsPerCall(backend, c * hw);
    for (let a = 0; images && a < n; a += step) {
      const b = Math.min(n, a + step);
      const tensor = images.run(a, b);
      try {
        work.push(moments(tensor, b - a));
      } finally {
        tensor.dispose();
      }
    }
    const merged = this.#pending.then(async () => {
      this.#merge(n, c, hw, last, await Promise.all(work));
    });
    // The chain continues after a failure; the failure is reported by this add and by result().
    this.#pending = merged.catch((e: unknown) => { this.#failure ??= e; });
    return merged;
  }

  /** Merge a batch of `n` images, reduced in parts (all of them or none, should one fail). */
  #merge(n: number, c: number, hw: number, channelsLast: boolean, parts: { columns: Moments64 | null; groups: Moments64 | null }[]): void {
    this.#channel ??= emptyMoments64(c);
    for (const { columns, groups } of parts) {
      mergeMomentsFrom(this.#channel, groups!);
      if (columns) {
        this.#pixel ??= emptyMoments64(c * hw);
        // Pixel statistics are kept [C, H, W] whatever the batch layout.
        mergeMomentsFrom(this.#pixel, columns, channelsLast ? (i) => (i % c) * hw + Math.floor(i / c) : undefined);
      }
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
