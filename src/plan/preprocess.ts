/**
 * Planning of image preprocessing: option validation, presets, and the geometry of every image
 * of a batch (resize, center crop), in the conventions of torchvision. Pure: no DOM, no GPU.
 */
import preprocessImage from '../../shaders/preprocess_image.wgsl?raw';
import type { DType } from '../half';
import type { KernelDef } from '../stage-def';
import { check } from '../errors';
import type { Layout } from './options';
import { linearGrid, type AdapterTraits } from './gpu-plan';
import { checkBoolean, checkNumber, checkOneOf, checkOptions, describe } from './checks';
import { checkLayout } from './spec';

/** Normalization presets; see `IMAGE_PRESETS`. */
/** Image to tensor from packed bytes or a texture array: preprocess_image.wgsl (see src/stage-def.ts). */
export interface PreprocessKernels {
  readonly bytes: KernelDef;
  readonly texture: KernelDef;
}

export const PREPROCESS_KERNELS: PreprocessKernels = {
  bytes: { name: 'preprocess_image', sources: [preprocessImage], entryPoint: 'main_bytes', bindings: ['uniform', 'read', 'read', 'write'] },
  texture: { name: 'preprocess_image', sources: [preprocessImage], entryPoint: 'main_texture', bindings: ['uniform', 'read', 'texture', 'write'] },
};

export type ImagePreset = 'imagenet' | 'caffe' | 'inception' | 'zero-center' | 'none';

/** Channel order of the output: RGB, BGR (Caffe, OpenCV) or one ITU-R 601 luma channel. */
export type ChannelOrder = 'rgb' | 'bgr' | 'grayscale';

/** Options of `preprocess`: the steps run in this order, fused into one dispatch. */
export interface PreprocessOptions {
  /** Scale, mean, std and channel order of a well-known model family; other options override it. */
  preset?: ImagePreset;
  /**
   * A number resizes the shorter side to it and keeps the aspect ratio (torchvision
   * `Resize(int)`: the longer side becomes `floor(size * long / short)`); `[height, width]`
   * resizes to exactly that. Default: no resize.
   */
  resize?: number | readonly [number, number];
  /** Default `'bilinear'` (torchvision, antialias=False); `'nearest'` is torchvision NEAREST_EXACT. */
  interpolation?: 'bilinear' | 'nearest';
  /**
   * `'exact'` (default): the resize and crop follow torchvision (above) on every backend and
   * adapter. `'fast'`: on a software adapter (SwiftShader, WARP...), where the shader runs on the
   * CPU, each resized image is first shrunk to its crop window on the host (a browser image by
   * the browser's 2-D canvas, as canvas pipelines such as transformers.js do; bytes by a
   * bilinear pass rounded to bytes), so only the output's pixels are uploaded (when every image
   * of the batch is shrunk, the rest is computed there too and only the tensor is uploaded):
   * much faster there, but values differ from torchvision's by about a byte's rounding (mean
   * 4e-3 after ImageNet normalization; the canvas may also antialias). GPUs and the CPU backend
   * compute `'exact'` either way.
   */
  resizeMode?: 'exact' | 'fast';
  /** Center crop of the (resized) image: a square side or `[height, width]` (torchvision `CenterCrop`). */
  centerCrop?: number | readonly [number, number];
  /** Mirror left-right (after the crop). Default: false. */
  flipHorizontal?: boolean;
  /** Default: the preset's, else `'rgb'`. */
  channelOrder?: ChannelOrder;
  /** Multiplies the 0..255 values before the mean is subtracted. Default: the preset's, else 1/255. */
  scale?: number;
  /**
   * Per channel, subtracted after scaling. Given in R, G, B order whatever `channelOrder` is (one
   * value for grayscale; a single value applies to every channel). Default: the preset's, else 0.
   */
  mean?: readonly number[];
  /** Per channel divisor, ordered as `mean`; must not be 0. Default: the preset's, else 1. */
  std?: readonly number[];
  /** `[N, C, H, W]` (`'channels-first'`, default) or `[N, H, W, C]`. */
  layout?: Layout;
  /** Element type of the output; `'float16'` rounds the float32 result to halves. Default: `'float32'`. */
  outputDtype?: DType;
}

interface PresetValues {
  scale: number;
  mean: readonly number[];
  std: readonly number[];
  channelOrder: ChannelOrder;
}

/**
 * The presets. `imagenet`: torchvision's ImageNet statistics on [0, 1]. `caffe`: BGR with the
 * ImageNet means on [0, 255] subtracted (given as R, G, B: 123.68, 116.779, 103.939) and no std,
 * as Keras `preprocess_input(mode='caffe')`. `inception`: [-1, 1] (Keras mode 'tf').
 * `zero-center`: subtract the `mean` you give (on [0, 1] unless you give `scale`), std 1.
 * `none`: `ToTensor()`, values on [0, 1].
 */
export const IMAGE_PRESETS: Readonly<Record<ImagePreset, Readonly<PresetValues>>> = {
  imagenet: { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'rgb' },
  caffe: { scale: 1, mean: [123.68, 116.779, 103.939], std: [1, 1, 1], channelOrder: 'bgr' },
  inception: { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channelOrder: 'rgb' },
  'zero-center': { scale: 1 / 255, mean: [], std: [1], channelOrder: 'rgb' },
  none: { scale: 1 / 255, mean: [0], std: [1], channelOrder: 'rgb' },
};

/** ITU-R BT.601 luma weights, as torchvision's `Grayscale` and PIL's `convert('L')`. */
export const LUMA_601 = [0.299, 0.587, 0.114] as const;

/** Size and bytes per pixel of one source image, as the planner needs them. */
export interface SourceSize {
  width: number;
  height: number;
}

/** The two source indices of an output coordinate and the weight of the second. */
export interface Taps {
  i0: number;
  i1: number;
  f: number;
}

/**
 * Twin of preprocess_image.wgsl's `axisTaps`, in float64: src = ((2d + 1) * in - out) / (2 * out),
 * clamped at 0, in exact integers (the CPU backend and `resizeMode: 'fast'` on bytes use it).
 */
export function axisTaps(d: number, inSize: number, outSize: number, nearest: boolean): Taps {
  const t = (2 * d + 1) * inSize;
  const den = 2 * outSize;
  if (nearest) {
    const i = Math.min(Math.floor(t / den), inSize - 1);
    return { i0: i, i1: i, f: 0 };
  }
  if (t <= outSize) return { i0: 0, i1: 0, f: 0 };
  const num = t - outSize;
  const i0 = Math.floor(num / den);
  return { i0, i1: Math.min(i0 + 1, inSize - 1), f: (num % den) / den };
}

/** Whether an image's geometry resamples (a resize that changes its size). */
export const resamples = (g: ImageGeometry): boolean => g.resizedW !== g.srcW || g.resizedH !== g.srcH;

/** The geometry of an image already shrunk to its crop window: read as it is. */
export function croppedGeometry(outW: number, outH: number): ImageGeometry {
  return { srcW: outW, srcH: outH, resizedW: outW, resizedH: outH, cropLeft: 0, cropTop: 0 };
}

/** Where one image's output pixels come from. */
export interface ImageGeometry {
  srcW: number;
  srcH: number;
  /** Size of the resized image (the source size without a resize). */
  resizedW: number;
  resizedH: number;
  /** Offset of the crop in the resized image. */
  cropLeft: number;
  cropTop: number;
}

/** A validated preprocessing call: what both backends execute. */
export interface PreprocessSpec {
  images: readonly ImageGeometry[];
  outW: number;
  outH: number;
  /** Output channels: 3, or 1 for grayscale. */
  channels: number;
  nearest: boolean;
  /** `resizeMode: 'fast'`: a software adapter may shrink browser images with a 2-D canvas first. */
  fastResize: boolean;
  flip: boolean;
  layout: Layout;
  scale: number;
  /** Rows of the RGB -> output channel matrix, one per output channel. */
  mix: readonly (readonly [number, number, number])[];
  /** Per output channel, already in output order. */
  mean: readonly number[];
  std: readonly number[];
  /** `[N, C, H, W]` or `[N, H, W, C]`. */
  outputShape: readonly number[];
}

const PRESETS = Object.keys(IMAGE_PRESETS) as ImagePreset[];
const ORDERS: readonly ChannelOrder[] = ['rgb', 'bgr', 'grayscale'];

/** Python's round(): halves go to the even neighbour (torchvision's crop offsets use it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function positiveInt(v: unknown, what: string): number {
  return checkNumber(v, what, { min: 1, integer: true });
}

/** `[height, width]` of a size option given as a number (square) or a pair. */
function sizePair(v: number | readonly [number, number], what: string): [number, number] {
  if (typeof v === 'number') return [positiveInt(v, what), v];
  check(Array.isArray(v) && v.length === 2, 'INVALID_ARGUMENT', `${what} must be a number or [height, width], got ${describe(v)}`);
  return [positiveInt(v[0], `${what}[0]`), positiveInt(v[1], `${what}[1]`)];
}

/** Size after torchvision `Resize(size)`: `[height, width]` from a shorter-side int or a pair. */
export function resizedSize(width: number, height: number, resize: number | readonly [number, number]): [number, number] {
  if (typeof resize !== 'number') return sizePair(resize, 'resize');
  const size = positiveInt(resize, 'resize');
  // torchvision: the shorter side becomes `size`, the longer int(size * long / short).
  if (width <= height) return [Math.max(1, Math.floor((size * height) / width)), size];
  return [size, Math.max(1, Math.floor((size * width) / height))];
}

/** Per-channel values given in R, G, B order, moved to the output order. */
function perChannel(values: readonly number[], order: ChannelOrder, name: string): number[] {
  check(Array.isArray(values), 'INVALID_ARGUMENT', `${name} must be an array of numbers, got ${describe(values)}`);
  const channels = order === 'grayscale' ? 1 : 3;
  check(
    values.length === 1 || values.length === channels, 'CHANNEL_MISMATCH',
    `${name} has ${values.length} values; ${order} output has ${channels} channel(s) (or give one value)`,
  );
  values.forEach((v, i) => checkNumber(v, `${name}[${i}]`));
  const full = values.length === 1 ? Array<number>(channels).fill(values[0]) : [...values];
  return order === 'bgr' ? full.reverse() : full;
}

/**
 * Check every option that does not depend on the images (so image-less callers, such as
 * DatasetStats, can check them early) and resolve them against the preset.
 */
export function checkPreprocessOptions(options: PreprocessOptions | undefined) {
  const o = checkOptions(options, 'preprocess options');
  const presetName = checkOneOf(o.preset, 'preset', PRESETS, 'none');
  const preset = IMAGE_PRESETS[presetName];
  const order = checkOneOf(o.channelOrder, 'channelOrder', ORDERS, preset.channelOrder);
  const layout = checkLayout(o.layout);
  const interpolation = checkOneOf(o.interpolation, 'interpolation', ['bilinear', 'nearest'], 'bilinear');
  const resizeMode = checkOneOf(o.resizeMode, 'resizeMode', ['exact', 'fast'], 'exact');
  const scale = checkNumber(o.scale ?? preset.scale, 'scale');
  if (presetName === 'zero-center') check(o.mean !== undefined, 'INVALID_ARGUMENT', "preset 'zero-center' needs a mean");
  const mean = perChannel(o.mean ?? preset.mean, order, 'mean');
  const std = perChannel(o.std ?? preset.std, order, 'std');
  check(std.every((s) => s !== 0), 'ZERO_STD', `std must not be 0, got [${std}]`);
  if (typeof o.resize === 'number') positiveInt(o.resize, 'resize');
  else if (o.resize !== undefined) sizePair(o.resize, 'resize');
  const crop = o.centerCrop === undefined ? null : sizePair(o.centerCrop, 'centerCrop');
  const flip = checkBoolean(o.flipHorizontal, 'flipHorizontal', false);
  return { order, layout, nearest: interpolation === 'nearest', fastResize: resizeMode === 'fast', scale, mean, std, resize: o.resize, crop, flip };
}

/** Validate options against the source sizes and resolve the geometry of every image. */
export function preprocessSpec(sources: readonly SourceSize[], options: PreprocessOptions | undefined): PreprocessSpec {
  const { order, layout, nearest, fastResize, scale, mean, std, resize, crop, flip } = checkPreprocessOptions(options);
  check(sources.length > 0, 'EMPTY_TENSOR', 'preprocess needs at least one image');

  const images: ImageGeometry[] = sources.map(({ width, height }, i) => {
    const [resizedH, resizedW] = resize === undefined ? [height, width] : resizedSize(width, height, resize);
    // Exact integer sampling needs (2 * out) * in below 2^32 (see preprocess_image.wgsl).
    check(
      2 * resizedW * width < 2 ** 32 && 2 * resizedH * height < 2 ** 32, 'INVALID_ARGUMENT',
      `image ${i}: resizing ${width}x${height} to ${resizedW}x${resizedH} is too large`,
    );
    let cropLeft = 0;
    let cropTop = 0;
    if (crop) {
      check(
        crop[0] <= resizedH && crop[1] <= resizedW, 'CROP_TOO_LARGE',
        `image ${i}: center crop ${crop[0]}x${crop[1]} (HxW) is larger than the ${resizedH}x${resizedW} image it crops`,
      );
      cropTop = roundHalfEven((resizedH - crop[0]) / 2);
      cropLeft = roundHalfEven((resizedW - crop[1]) / 2);
    }
    return { srcW: width, srcH: height, resizedW, resizedH, cropLeft, cropTop };
  });
  const [outH, outW] = crop ?? [images[0].resizedH, images[0].resizedW];
  if (!crop) {
    images.forEach((g, i) => check(
      g.resizedH === outH && g.resizedW === outW, 'IMAGE_SIZE_MISMATCH',
      `image ${i} comes out ${g.resizedH}x${g.resizedW}, image 0 ${outH}x${outW}: give resize [h, w] or centerCrop`,
    ));
  }
  const channels = order === 'grayscale' ? 1 : 3;
  const mix: [number, number, number][] = order === 'rgb' ? [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    : order === 'bgr' ? [[0, 0, 1], [0, 1, 0], [1, 0, 0]] : [[...LUMA_601]];
  const n = sources.length;
  return {
    images, outW, outH, channels, nearest, fastResize, flip, layout,
    scale, mix, mean, std,
    outputShape: layout === 'channels-first' ? [n, channels, outH, outW] : [n, outH, outW, channels],
  };
}

export const PREPROCESS_WG = 64;

/** How preprocess_image.wgsl is dispatched for a spec on an adapter. */
export interface PreprocessGpuPlan {
  /** One invocation per output row (serial over its pixels) instead of one per pixel. */
  rows: boolean;
  /**
   * Read DOM images through a 2-D canvas and upload their bytes instead of
   * copyExternalImageToTexture, which a software adapter runs as a slow render pass
   * (SwiftShader in Chromium: ~200 ms for a 1920x1080 frame, against ~12 ms for the bytes).
   */
  readExternalOnCpu: boolean;
  /**
   * `resizeMode: 'fast'` on a software adapter: images that are resized are first shrunk to
   * their crop window on the host, so the kernel reads only output-sized images; a batch shrunk
   * whole is finished on the host, without the kernel (its completion is seen about 2 ms late
   * there: src/gpu/preprocess-host.ts).
   */
  shrinkOnCpu: boolean;
  workgroups: [number, number, number];
  why: string;
}

/**
 * Software adapters (SwiftShader, WARP...) run few long-looping invocations best (FACTS.md):
 * they get one invocation per output row, and DOM images reach them as bytes. GPUs get one
 * invocation per pixel, neighbours reading neighbouring texels and writing neighbouring
 * floats, and DOM images are copied GPU-side. Images span y and z.
 */
export function planPreprocessGpu(spec: PreprocessSpec, traits: AdapterTraits): PreprocessGpuPlan {
  const software = traits.prefer === 'serial' || (traits.prefer === 'auto' && traits.software);
  const items = software ? spec.outH : spec.outH * spec.outW;
  const [gy, gz] = linearGrid(spec.images.length, 1, traits.maxWorkgroupsPerDim);
  return {
    rows: software,
    readExternalOnCpu: software,
    shrinkOnCpu: software && spec.fastResize,
    workgroups: [Math.min(Math.ceil(items / PREPROCESS_WG), traits.maxWorkgroupsPerDim), gy, gz],
    why: software ? 'software adapter: one invocation per output row, DOM images read as bytes' : 'one invocation per output pixel',
  };
}
