/**
 * Image to tensor: `preprocess(engine, images, options)` turns a batch of images into one
 * normalized float32 tensor `[N, C, H, W]` (or channels-last) in a single fused GPU dispatch:
 * resize, center crop, flip, channel order, scale and (x - mean) / std.
 *
 * ```ts
 * const x = preprocess(engine, canvas, { preset: 'imagenet', resize: 256, centerCrop: 224 });
 * ```
 */
import { check } from '../errors';
import type { ImageInput } from '../image-input';
import { PREPROCESS_KERNELS, preprocessSpec, type PreprocessOptions, type PreprocessSpec } from '../plan/preprocess';
import type { Engine } from './engine';
import type { Tensor } from './tensor';
import { checkEngine, checkFitsBinding, checkOptions, describe } from './validate';
import { checkDtype } from '../plan/spec';

/**
 * Raw pixels: `width * height` pixels row by row, `channels` bytes each (1 gray, 3 RGB, 4 RGBA;
 * alpha is ignored). Without `channels` it is inferred from the length. `ImageData` is one.
 */
export interface ImageBytes {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels?: 1 | 3 | 4;
}

/**
 * What `preprocess` reads. In Node only `ImageBytes`. In a browser also the DOM image sources,
 * copied to the GPU with `copyExternalImageToTexture` (read through a 2-D canvas on the CPU
 * backend), and a `GPUTexture` of the engine's device (rgba8unorm, bgra8unorm, their -srgb
 * forms read as raw bytes, rgba16float or rgba32float on a 0..1 scale; usage COPY_SRC).
 */
export type ImageSource =
  | ImageBytes
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLCanvasElement
  | HTMLVideoElement
  | OffscreenCanvas
  | VideoFrame
  | GPUTexture;

function isInstance(value: object, name: string): boolean {
  const ctor = (globalThis as Record<string, unknown>)[name];
  return typeof ctor === 'function' && value instanceof (ctor as new () => unknown);
}

function checkSize(width: unknown, height: unknown, i: number): { width: number; height: number } {
  check(
    typeof width === 'number' && typeof height === 'number' && Number.isInteger(width) && Number.isInteger(height) && width >= 0 && height >= 0,
    'INVALID_SHAPE', `image ${i}: width and height must be non-negative integers, got ${String(width)}x${String(height)}`,
  );
  check(width > 0 && height > 0, 'EMPTY_IMAGE', `image ${i} is ${width}x${height}: no pixels`);
  return { width, height };
}

function classify(s: ImageSource, i: number): ImageInput {
  check(s !== null && typeof s === 'object', 'UNSUPPORTED_SOURCE', `image ${i} is ${describe(s)}, not an image source`);
  const o = s as unknown as Record<string, unknown>;
  if (typeof o.createView === 'function' && typeof o.format === 'string') {
    const t = s as GPUTexture;
    return { kind: 'texture', ...checkSize(t.width, t.height, i), texture: t };
  }
  if (o.data instanceof Uint8Array || o.data instanceof Uint8ClampedArray) {
    const { width, height } = checkSize(o.width, o.height, i);
    const data = o.data;
    const pixels = width * height;
    let channels = o.channels as number | undefined;
    if (channels === undefined) {
      channels = data.length / pixels;
      check(
        [1, 3, 4].includes(channels), 'DATA_LENGTH_MISMATCH',
        `image ${i}: ${data.length} bytes is not 1, 3 or 4 bytes per pixel of ${width}x${height}`,
      );
    } else {
      check([1, 3, 4].includes(channels), 'CHANNEL_MISMATCH', `image ${i}: channels must be 1, 3 or 4, got ${String(channels)}`);
      check(
        data.length === pixels * channels, 'DATA_LENGTH_MISMATCH',
        `image ${i}: ${data.length} bytes, ${width}x${height}x${channels} needs ${pixels * channels}`,
      );
    }
    return { kind: 'bytes', width, height, data, channels };
  }
  if (o.data !== undefined && o.width !== undefined) {
    check(false, 'UNSUPPORTED_SOURCE', `image ${i}: data must be a Uint8Array or Uint8ClampedArray`);
  }
  let size: [unknown, unknown] | null = null;
  const video = isInstance(s, 'VideoFrame') || isInstance(s, 'HTMLVideoElement');
  if (isInstance(s, 'VideoFrame')) size = [o.displayWidth, o.displayHeight];
  else if (isInstance(s, 'HTMLVideoElement')) size = [o.videoWidth, o.videoHeight];
  else if (isInstance(s, 'HTMLImageElement')) size = [o.naturalWidth, o.naturalHeight];
  else if (['ImageBitmap', 'HTMLCanvasElement', 'OffscreenCanvas'].some((n) => isInstance(s, n))) size = [o.width, o.height];
  check(size, 'UNSUPPORTED_SOURCE', `image ${i} is not an ImageSource (bytes with width/height, a DOM image, a VideoFrame or a GPUTexture)`);
  return { kind: 'external', ...checkSize(size[0], size[1], i), source: s as GPUCopyExternalImageSource, video };
}

/**
 * Validate and plan without running: the spec both backends execute (for tests and tools).
 * Throws the same typed errors as `preprocess`.
 */
export function planPreprocess(images: ImageSource | readonly ImageSource[], options: PreprocessOptions = {}): PreprocessSpec {
  return preprocessSpec(classifyAll(images), options);
}

/** The sources of a batch: one image or an array of them. */
function classifyAll(images: ImageSource | readonly ImageSource[]): ImageInput[] {
  check(images !== null && images !== undefined, 'UNSUPPORTED_SOURCE', `images must be an image source or an array of them, got ${describe(images)}`);
  const list = Array.isArray(images) ? (images as readonly ImageSource[]) : [images as ImageSource];
  return list.map(classify);
}

/** @internal A validated batch: its spec, and its images [start, end) run into one tensor. */
export interface PreparedBatch {
  spec: PreprocessSpec;
  run(start: number, end: number): Tensor;
}

/** The spec of images [start, end) of a batch. */
function subBatch(spec: PreprocessSpec, start: number, end: number): PreprocessSpec {
  if (start === 0 && end === spec.images.length) return spec;
  return { ...spec, images: spec.images.slice(start, end), outputShape: [end - start, ...spec.outputShape.slice(1)] };
}

/**
 * @internal Every check of `preprocess` but the output's size, for the whole batch, before any
 * GPU work; `run` then makes tensors of parts of it (DatasetStats splits batches that way).
 */
export function preparePreprocess(engine: Engine, images: ImageSource | readonly ImageSource[], options: PreprocessOptions = {}): PreparedBatch {
  const backend = checkEngine(engine).internalBackend;
  const sources = classifyAll(images);
  const spec = preprocessSpec(sources, options);
  const dtype = checkDtype(checkOptions(options, 'preprocess options').outputDtype, 'outputDtype', 'float32');
  const run = backend.preprocess(spec, sources, PREPROCESS_KERNELS);
  return {
    spec,
    run: (start, end) => {
      const sub = subBatch(spec, start, end);
      let out = run(sub, start, end);
      if (dtype === 'float16') {
        // The stage computes float32; add_residual.wgsl rounds it to halves.
        const f32 = out;
        out = backend.cast(f32, sub.outputShape.reduce((a, b) => a * b, 1), 'float16');
        backend.releaseStorage(f32);
      }
      return engine.internalTensor(out, sub.outputShape, sub.layout, 'preprocess');
    },
  };
}

/**
 * Images to one normalized tensor: `[N, C, H, W]` (or `[N, H, W, C]` with
 * `layout: 'channels-last'`), N = 1 for a single image. Everything is validated before any GPU
 * work, the output's size against the device's binding limit too (TENSOR_TOO_LARGE: split the
 * batch); the tensor is ready to read (or feed on) when this returns.
 */
export function preprocess(engine: Engine, images: ImageSource | readonly ImageSource[], options: PreprocessOptions = {}): Tensor {
  const batch = preparePreprocess(engine, images, options);
  const shape = batch.spec.outputShape;
  checkFitsBinding(engine.internalBackend, shape.reduce((a, b) => a * b, 1) * 4, `preprocess output [${shape}]`);
  return batch.run(0, batch.spec.images.length);
}
