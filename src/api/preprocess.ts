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
import { preprocessImage, type ImagePixels } from '../cpu/preprocess';
import { WebGpuBackend } from '../gpu/backend';
import { bindsDirectly, runPreprocess, TEXTURE_SOURCE_FORMATS, type GpuImageSource } from '../gpu/preprocess';
import { planPreprocessGpu, preprocessSpec, type PreprocessOptions, type PreprocessSpec } from '../plan/preprocess';
import type { Engine } from './engine';
import { Tensor, type Storage } from './tensor';

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

/** A source after classification, with its size. */
type Classified =
  | { kind: 'bytes'; width: number; height: number; data: Uint8Array | Uint8ClampedArray; channels: number }
  | { kind: 'external'; width: number; height: number; source: GPUCopyExternalImageSource; video: boolean }
  | { kind: 'texture'; width: number; height: number; texture: GPUTexture };

const GPU_TEXTURE_COPY_SRC = 0x01;

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

function classify(s: ImageSource, i: number): Classified {
  check(s !== null && typeof s === 'object', 'UNSUPPORTED_SOURCE', `image ${i} is ${String(s)}, not an image source`);
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

/** Checks of the GPU path that depend on the device: texture formats and limits. */
function checkGpuSources(backend: WebGpuBackend, sources: readonly Classified[]): void {
  if (sources.every((s) => s.kind === 'bytes')) return;
  const limits = backend.device.limits;
  check(
    sources.length <= limits.maxTextureArrayLayers, 'INVALID_ARGUMENT',
    `a batch with browser images or textures holds at most ${limits.maxTextureArrayLayers} images, got ${sources.length}`,
  );
  let format: GPUTextureFormat | undefined;
  sources.forEach((s, i) => {
    check(
      s.width <= limits.maxTextureDimension2D && s.height <= limits.maxTextureDimension2D, 'INVALID_ARGUMENT',
      `image ${i} (${s.width}x${s.height}) exceeds the device's ${limits.maxTextureDimension2D}-texel texture limit`,
    );
    if (s.kind !== 'texture') return;
    const copyAs = TEXTURE_SOURCE_FORMATS[s.texture.format];
    check(copyAs, 'UNSUPPORTED_SOURCE', `image ${i}: texture format ${s.texture.format} is not one of ${Object.keys(TEXTURE_SOURCE_FORMATS).join(', ')}`);
    check(
      (s.texture.usage & GPU_TEXTURE_COPY_SRC) !== 0 || bindsDirectly(s.texture, sources.length), 'UNSUPPORTED_SOURCE',
      `image ${i}: the texture needs usage COPY_SRC (or, alone in its batch and not -srgb, TEXTURE_BINDING)`,
    );
    check(format === undefined || format === copyAs, 'UNSUPPORTED_SOURCE', `image ${i}: textures of one batch must share a format (${format} and ${s.texture.format})`);
    format = copyAs;
  });
  const float = format === 'rgba16float' || format === 'rgba32float';
  check(!float || sources.every((s) => s.kind !== 'bytes'), 'UNSUPPORTED_SOURCE', 'float textures and byte images cannot share a batch');
}

function canReadPixels(): boolean {
  const g = globalThis as { OffscreenCanvas?: unknown; document?: unknown };
  return g.OffscreenCanvas !== undefined || g.document !== undefined;
}

/** Pixels of a DOM image through a 2-D canvas (the CPU backend's way to read one). */
function readPixels(s: Extract<Classified, { kind: 'external' }>, i: number): ImagePixels {
  const g = globalThis as { OffscreenCanvas?: typeof OffscreenCanvas; document?: Document };
  let ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null = null;
  if (g.OffscreenCanvas) {
    ctx = new g.OffscreenCanvas(s.width, s.height).getContext('2d', { willReadFrequently: true });
  } else if (g.document) {
    const canvas = g.document.createElement('canvas');
    canvas.width = s.width;
    canvas.height = s.height;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  }
  check(ctx, 'UNSUPPORTED_SOURCE', `image ${i}: no 2-D canvas to read it with on the CPU backend`);
  ctx.drawImage(s.source as CanvasImageSource, 0, 0, s.width, s.height);
  return { data: ctx.getImageData(0, 0, s.width, s.height).data, channels: 4 };
}

/**
 * Validate and plan without running: the spec both backends execute (for tests and tools).
 * Throws the same typed errors as `preprocess`.
 */
export function planPreprocess(images: ImageSource | readonly ImageSource[], options: PreprocessOptions = {}): PreprocessSpec {
  const list = Array.isArray(images) ? (images as readonly ImageSource[]) : [images as ImageSource];
  return preprocessSpec(list.map(classify), options);
}

/**
 * Images to one normalized tensor: `[N, C, H, W]` (or `[N, H, W, C]` with
 * `layout: 'channels-last'`), N = 1 for a single image. Everything is validated before any GPU
 * work; the tensor is ready to read (or feed on) when this returns.
 */
export function preprocess(engine: Engine, images: ImageSource | readonly ImageSource[], options: PreprocessOptions = {}): Tensor {
  const backend = engine.internalBackend;
  const list = Array.isArray(images) ? (images as readonly ImageSource[]) : [images as ImageSource];
  const sources = list.map(classify);
  const spec = preprocessSpec(sources, options);
  let storage: Storage;
  if (backend instanceof WebGpuBackend) {
    // Software adapters take DOM images as bytes (see PreprocessGpuPlan.readExternalOnCpu). Video
    // always does there: on Chromium's SwiftShader, copyExternalImageToTexture of a VideoFrame
    // destroys the device instead of throwing.
    const plan = planPreprocessGpu(spec, backend.traits);
    const allAsBytes = plan.readExternalOnCpu;
    const asBytes = (s: Classified) => s.kind === 'external' && canReadPixels() && (allAsBytes || (s.video && backend.traits.software));
    const resolved: Classified[] = sources.map((s, i) => (asBytes(s) ? { ...s, kind: 'bytes', ...readPixels(s as Extract<Classified, { kind: 'external' }>, i) } : s));
    checkGpuSources(backend, resolved);
    const gpu: GpuImageSource[] = resolved.map((s, i) => (s.kind === 'bytes' ? { kind: 'bytes', data: s.data, channels: s.channels }
      : s.kind === 'external' ? { kind: 'external', source: s.source, readPixels: canReadPixels() ? () => readPixels(s, i) : undefined }
        : { kind: 'texture', texture: s.texture }));
    storage = { kind: 'gpu', buffer: runPreprocess(backend, spec, plan, gpu), owned: true };
  } else {
    sources.forEach((s, i) => check(s.kind !== 'texture', 'UNSUPPORTED_SOURCE', `image ${i}: a GPUTexture needs the WebGPU backend`));
    const pixels = sources.map((s, i) => (s.kind === 'bytes' ? { data: s.data, channels: s.channels }
      : readPixels(s as Extract<Classified, { kind: 'external' }>, i)));
    storage = { kind: 'cpu', data: preprocessImage(spec, pixels) };
  }
  return new Tensor(backend, storage, spec.outputShape, spec.layout);
}
