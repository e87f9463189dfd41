/**
 * Runs preprocess_image.wgsl: uploads the batch (bytes packed four per u32, or browser images
 * copied into the layers of one texture array) and records the one fused dispatch. A
 * `resizeMode: 'fast'` batch that a software adapter's host shrinks whole is finished there
 * instead (preprocess-host.ts): only the tensor is uploaded, no dispatch.
 */
import type { PreparedImages, Storage } from '../backend';
import { check } from '../errors';
import {
  canReadPixels, canScale, PixelCanvas, readPixels, readPixelsScaled, type ExternalImage, type ImageInput, type ImagePixels,
} from '../image-input';
import {
  croppedGeometry, planPreprocessGpu, PREPROCESS_WG, resamples, type PreprocessGpuPlan, type PreprocessSpec,
  type PreprocessKernels,
} from '../plan/preprocess';
import type { WebGpuBackend } from './backend';
import { normalizeOnHost } from './preprocess-host';
import { STORAGE_USAGE } from '../webgpu-flags';
import type { Recorder } from './recorder';
import { guardScopes } from './faults';

// GPUTextureUsage values, fixed by the spec (the globals are missing before Dawn loads).
const TEXTURE_COPY_DST = 0x02;
const TEXTURE_BINDING = 0x04;
const RENDER_ATTACHMENT = 0x10;
const TEXTURE_COPY_SRC = 0x01;

/** A source as the GPU path uploads it. */
type GpuImageSource =
  | { kind: 'bytes'; data: Uint8Array | Uint8ClampedArray; channels: number }
  | {
    kind: 'external';
    source: GPUCopyExternalImageSource;
    /** The image's RGBA bytes another way (a 2-D canvas), for when the browser refuses the GPU copy. */
    readPixels?: () => { data: Uint8Array | Uint8ClampedArray; channels: number };
  }
  | { kind: 'texture'; texture: GPUTexture };

/** Texture formats a GPUTexture source may have, each with the format it is copied into. */
const TEXTURE_SOURCE_FORMATS: Readonly<Record<string, GPUTextureFormat>> = {
  rgba8unorm: 'rgba8unorm',
  'rgba8unorm-srgb': 'rgba8unorm', // copied as raw bytes: no sRGB decode on load
  bgra8unorm: 'bgra8unorm',
  'bgra8unorm-srgb': 'bgra8unorm',
  rgba16float: 'rgba16float',
  rgba32float: 'rgba32float',
};

const SRGB = /-srgb$/;

/**
 * Whether a lone GPUTexture source can be bound as it is (no copy): it needs usage
 * TEXTURE_BINDING and a format read without sRGB decoding.
 */
function bindsDirectly(texture: GPUTexture, batch: number): boolean {
  return batch === 1 && (texture.usage & TEXTURE_BINDING) !== 0 && !SRGB.test(texture.format) && texture.dimension === '2d';
}

/**
 * What an engine reuses across `resizeMode: 'fast'` calls: its canvas (see PixelCanvas) and
 * one image's output floats (a fresh array costs more than filling it: the pages are new).
 */
interface HostScratch {
  canvas: PixelCanvas;
  floats: Float32Array;
}

const hostScratches = new WeakMap<WebGpuBackend, HostScratch>();

function hostScratch(backend: WebGpuBackend): HostScratch {
  let scratch = hostScratches.get(backend);
  if (!scratch) hostScratches.set(backend, (scratch = { canvas: new PixelCanvas(), floats: new Float32Array(0) }));
  return scratch;
}

/** The output of a batch shrunk on the host, computed there and uploaded image by image. */
function uploadOnHost(backend: WebGpuBackend, spec: PreprocessSpec, images: readonly ImagePixels[]): Storage {
  backend.assertUsable();
  const floats = spec.channels * spec.outW * spec.outH;
  const scratch = hostScratch(backend);
  if (scratch.floats.length < floats) scratch.floats = new Float32Array(floats);
  const out = scratch.floats;
  const { value: buffer, fault } = guardScopes(backend.device, 'normgpu:preprocess', () => {
    const b = backend.pool.acquire(images.length * floats * 4, STORAGE_USAGE, 'normgpu:preprocess:output');
    images.forEach((p, n) => {
      normalizeOnHost(spec, p, out);
      backend.device.queue.writeBuffer(b, n * floats * 4, out.buffer, 0, floats * 4);
    });
    return b;
  });
  return { kind: 'gpu', buffer, owned: true, fault };
}

/**
 * The GPU side of `preprocess`: how each source is uploaded, every device-dependent check
 * made before any work, then the runner of parts of the batch. Software adapters take DOM
 * images as bytes (see PreprocessGpuPlan.readExternalOnCpu). Video always does there: on
 * Chromium's SwiftShader, copyExternalImageToTexture of a VideoFrame destroys the device
 * instead of throwing.
 */
export function prepareImagesGpu(
  backend: WebGpuBackend, spec: PreprocessSpec, sources: readonly ImageInput[], kernels: PreprocessKernels,
): PreparedImages {
  const plan = planPreprocessGpu(spec, backend.traits);
  const asBytes = (s: ImageInput) => s.kind === 'external' && canReadPixels() && (plan.readExternalOnCpu || (s.video && backend.traits.software));
  // resizeMode 'fast' on a software adapter: each resized image is shrunk to its crop window on the host.
  const shrunk = sources.map((s, i) => (plan.shrinkOnCpu && resamples(spec.images[i]) && canScale(s)
    ? readPixelsScaled(s, i, spec.images[i], spec.outW, spec.outH, spec.nearest, hostScratch(backend).canvas) : null));
  // All of them: the kernel's remaining work is done there too (see preprocess-host.ts).
  if (shrunk.every((p) => p !== null)) return (sub, start, end) => uploadOnHost(backend, sub, shrunk.slice(start, end));
  const scaled = shrunk.map((p) => p !== null);
  const resolved: ImageInput[] = sources.map((s, i) => {
    const p = shrunk[i];
    if (p) return { kind: 'bytes', width: spec.outW, height: spec.outH, ...p };
    return asBytes(s) ? { ...s, kind: 'bytes', ...readPixels(s as ExternalImage, i) } : s;
  });
  checkGpuSources(backend, resolved);
  const gpu: GpuImageSource[] = resolved.map((s, i) => (s.kind === 'bytes' ? { kind: 'bytes', data: s.data, channels: s.channels }
    : s.kind === 'external' ? { kind: 'external', source: s.source, readPixels: canReadPixels() ? () => readPixels(s, i) : undefined }
      : { kind: 'texture', texture: s.texture }));
  const cropped = croppedGeometry(spec.outW, spec.outH);
  return (sub, start, end) => {
    const read = scaled.some((x) => x) ? { ...sub, images: sub.images.map((g, k) => (scaled[start + k] ? cropped : g)) } : sub;
    return runPreprocess(backend, read, planPreprocessGpu(read, backend.traits), gpu.slice(start, end), kernels);
  };
}

/** Checks of the GPU path that depend on the device: texture formats and limits. */
function checkGpuSources(backend: WebGpuBackend, sources: readonly ImageInput[]): void {
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
      (s.texture.usage & TEXTURE_COPY_SRC) !== 0 || bindsDirectly(s.texture, sources.length), 'UNSUPPORTED_SOURCE',
      `image ${i}: the texture needs usage COPY_SRC (or, alone in its batch and not -srgb, TEXTURE_BINDING)`,
    );
    check(format === undefined || format === copyAs, 'UNSUPPORTED_SOURCE', `image ${i}: textures of one batch must share a format (${format} and ${s.texture.format})`);
    format = copyAs;
  });
  const float = format === 'rgba16float' || format === 'rgba32float';
  check(!float || sources.every((s) => s.kind !== 'bytes'), 'UNSUPPORTED_SOURCE', 'float textures and byte images cannot share a batch');
}

/**
 * The fused preprocessing dispatch; returns the output's storage ([N, C, H, W] or
 * channels-last float32). Bytes sources go through `main_bytes`; a batch with any browser
 * image or GPUTexture goes through `main_texture` (byte sources then become texture layers too).
 */
function runPreprocess(
  backend: WebGpuBackend, spec: PreprocessSpec, plan: PreprocessGpuPlan, sources: readonly GpuImageSource[], kernels: PreprocessKernels,
): Storage {
  const { value: buffer, fault } = backend.record('normgpu:preprocess', [], (rec) => recordPreprocess(backend, rec, spec, plan, sources, kernels));
  return { kind: 'gpu', buffer, owned: true, fault };
}

function recordPreprocess(
  backend: WebGpuBackend, rec: Recorder, spec: PreprocessSpec, plan: PreprocessGpuPlan, sources: readonly GpuImageSource[],
  kernels: PreprocessKernels,
): GPUBuffer {
  const device = backend.device;
  const n = sources.length;
  const count = n * spec.channels * spec.outW * spec.outH;
  const useTexture = sources.some((s) => s.kind !== 'bytes');

  // Per image: srcW, srcH, srcChannels, offset (first byte, or texture layer), resized size, crop.
  const info = new Uint32Array(n * 8);
  let texture: GPUTexture | null = null;
  let source: GPUBuffer | GPUTextureView;
  let unorm8 = true;
  const lone = sources[0];
  if (n === 1 && lone.kind === 'texture' && bindsDirectly(lone.texture, 1)) {
    const g = spec.images[0];
    const format = TEXTURE_SOURCE_FORMATS[lone.texture.format];
    unorm8 = format === 'rgba8unorm' || format === 'bgra8unorm';
    source = lone.texture.createView({ dimension: '2d-array', baseArrayLayer: 0, arrayLayerCount: 1, baseMipLevel: 0, mipLevelCount: 1 });
    info.set([g.srcW, g.srcH, 4, 0, g.resizedW, g.resizedH, g.cropLeft, g.cropTop], 0);
  } else if (useTexture) {
    const t = sources.find((s) => s.kind === 'texture');
    const format = t && t.kind === 'texture' ? TEXTURE_SOURCE_FORMATS[t.texture.format] : 'rgba8unorm';
    unorm8 = format === 'rgba8unorm' || format === 'bgra8unorm';
    const width = Math.max(...spec.images.map((g) => g.srcW));
    const height = Math.max(...spec.images.map((g) => g.srcH));
    texture = device.createTexture({
      label: 'normgpu:preprocess:images', size: [width, height, n], format, dimension: '2d',
      usage: TEXTURE_BINDING | TEXTURE_COPY_DST | RENDER_ATTACHMENT,
    });
    const copies = device.createCommandEncoder({ label: 'normgpu:preprocess:copies' });
    let copied = 0;
    // A browser copy may throw: nothing but the texture is held yet.
    try {
      sources.forEach((s, i) => {
        const g = spec.images[i];
        const size = [g.srcW, g.srcH, 1];
        const destination = { texture: texture!, origin: [0, 0, i] };
        if (s.kind === 'external') {
          try {
            device.queue.copyExternalImageToTexture({ source: s.source }, { ...destination, premultipliedAlpha: false }, size);
          } catch (e) {
            // A browser that cannot copy a source throws (OperationError): upload the bytes read
            // through a canvas instead.
            if (!s.readPixels) throw e;
            const p = s.readPixels();
            device.queue.writeTexture(destination, rgbaBytes(p.data, p.channels, format === 'bgra8unorm'), { bytesPerRow: g.srcW * 4, rowsPerImage: g.srcH }, size);
          }
        } else if (s.kind === 'texture') {
          copies.copyTextureToTexture({ texture: s.texture }, destination, size);
          copied++;
        } else {
          const texels = rgbaBytes(s.data, s.channels, format === 'bgra8unorm');
          device.queue.writeTexture(destination, texels, { bytesPerRow: g.srcW * 4, rowsPerImage: g.srcH }, size);
        }
        // A 1-channel source keeps its count: its value passes through unmixed.
        const channels = s.kind === 'bytes' && s.channels === 1 ? 1 : 4;
        info.set([g.srcW, g.srcH, channels, i, g.resizedW, g.resizedH, g.cropLeft, g.cropTop], i * 8);
      });
    } catch (e) {
      texture.destroy();
      throw e;
    }
    if (copied) device.queue.submit([copies.finish()]);
    source = texture.createView({ dimension: '2d-array' });
  } else {
    // Each image starts on a word boundary.
    const offsets: number[] = [];
    let total = 0;
    for (const s of sources) {
      offsets.push(total);
      total += Math.ceil((s as { data: Uint8Array }).data.length / 4) * 4;
    }
    const bytes = rec.temp(total, STORAGE_USAGE, 'bytes');
    sources.forEach((s, i) => {
      const data = (s as { data: Uint8Array | Uint8ClampedArray }).data;
      writeBytes(device, bytes, offsets[i], data);
      const g = spec.images[i];
      info.set([g.srcW, g.srcH, (s as { channels: number }).channels, offsets[i], g.resizedW, g.resizedH, g.cropLeft, g.cropTop], i * 8);
    });
    source = bytes;
  }
  const infoBuffer = rec.temp(info.byteLength, STORAGE_USAGE, 'images');
  device.queue.writeBuffer(infoBuffer, 0, info);

  const f32: number[] = [];
  for (let c = 0; c < 3; c++) f32.push(...(spec.mix[c] ?? [0, 0, 0]), 0);
  const four = (v: readonly number[], fill: number) => [0, 1, 2, 3].map((c) => v[c] ?? fill);
  const meanHi = spec.mean.map(Math.fround);
  f32.push(...four(meanHi, 0), ...four(spec.mean.map((m, c) => m - meanHi[c]), 0), ...four(spec.std, 1), spec.scale);
  const params = rec.uniform('preprocess-params', [spec.outW, spec.outH, n, 0], f32);

  const out = rec.output(count * 4, STORAGE_USAGE, 'normgpu:preprocess:output');
  rec.dispatch(
    useTexture ? kernels.texture : kernels.bytes,
    {
      WG: PREPROCESS_WG, NEAREST: spec.nearest, FLIP: spec.flip, ROWS: plan.rows,
      RESAMPLE: spec.images.some(resamples),
      CHANNELS_LAST: spec.layout === 'channels-last', GRAY: spec.channels === 1, UNORM8: unorm8,
    },
    [params, infoBuffer, source, out],
    plan.workgroups,
  );
  if (texture) rec.destroyAfter(texture);
  return out;
}

/** Write `data` at `offset` (a multiple of 4); a tail of 1-3 bytes goes through a padded word. */
function writeBytes(device: GPUDevice, buffer: GPUBuffer, offset: number, data: Uint8Array | Uint8ClampedArray): void {
  const whole = data.length & ~3;
  if (whole) device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, whole);
  if (whole < data.length) {
    const tail = new Uint8Array(4);
    tail.set(data.subarray(whole));
    device.queue.writeBuffer(buffer, offset + whole, tail);
  }
}

/** Texels of a 1-, 3- or 4-channel image for an rgba8unorm (or, `bgra`, bgra8unorm) layer. */
function rgbaBytes(data: Uint8Array | Uint8ClampedArray, channels: number, bgra: boolean): Uint8Array<ArrayBuffer> {
  if (channels === 4 && !bgra) return new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.length);
  const pixels = data.length / channels;
  const out = new Uint8Array(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    for (let k = 0; k < 3; k++) out[p * 4 + (bgra ? 2 - k : k)] = data[p * channels + (channels === 1 ? 0 : k)];
    out[p * 4 + 3] = 255;
  }
  return out;
}
