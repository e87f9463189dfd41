/**
 * Image preprocessing: golden `image_normalize` cases on both backends, every step against an
 * independent float64 reference of torchvision's conventions (resize with half-pixel centers,
 * antialias=False; shorter-side Resize(int); CenterCrop with Python rounding; hflip; 601
 * luma), the GPU against its CPU twin, texture sources, and typed errors raised before any GPU
 * work. GPU work runs inside validation error scopes; without an adapter the GPU tests fail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cachedPipelineCount } from '../src/gpu/pipelines';
import { resizedSize, roundHalfEven } from '../src/plan/preprocess';
import {
  createEngine, IMAGE_PRESETS, NormGpuError, planPreprocess, preprocess,
  type Engine, type ImageBytes, type PreprocessOptions,
} from '../src/index';
import { makeGpuEngine, mulberry32, scaledError, trackGpuWork, withValidation, worstElement } from './support/gpu';

const GOLDEN = join(__dirname, 'golden');
const file = (name: string) => {
  const b = readFileSync(join(GOLDEN, name));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};
interface ImageCase {
  id: string; op: string; shape: [number, number, number]; input: string; output: string;
  params: { mean: number[]; std: number[]; scale: number; channel_order: string };
}
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as { cases: ImageCase[] };
const imageCases = manifest.cases.filter((c) => c.op === 'image_normalize');

// ---------------------------------------------------------------------------------------------
// Float64 reference, written from torchvision's definitions as separate steps (resize the whole
// image, then crop, then flip...), not fused as the engine does.

type Img = { w: number; h: number; ch: number; px: Float64Array }; // HWC, ch = 3

function toRgb(src: ImageBytes): Img {
  const ch = src.channels ?? src.data.length / (src.width * src.height);
  const px = new Float64Array(src.width * src.height * 3);
  for (let p = 0; p < src.width * src.height; p++) {
    for (let k = 0; k < 3; k++) px[p * 3 + k] = src.data[p * ch + (ch === 1 ? 0 : k)];
  }
  return { w: src.width, h: src.height, ch: 3, px };
}

/** torch.nn.functional.interpolate(align_corners=False, antialias=False), 'bilinear' or 'nearest-exact'. */
function refResize(img: Img, outH: number, outW: number, mode: 'bilinear' | 'nearest'): Img {
  const px = new Float64Array(outW * outH * 3);
  const axis = (d: number, inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    if (mode === 'nearest') {
      const i = Math.min(Math.floor((d + 0.5) * scale), inSize - 1);
      return { i0: i, i1: i, l: 0 };
    }
    const src = Math.max(0, (d + 0.5) * scale - 0.5);
    const i0 = Math.floor(src);
    return { i0, i1: Math.min(i0 + 1, inSize - 1), l: src - i0 };
  };
  for (let y = 0; y < outH; y++) {
    const ty = axis(y, img.h, outH);
    for (let x = 0; x < outW; x++) {
      const tx = axis(x, img.w, outW);
      for (let k = 0; k < 3; k++) {
        const at = (xx: number, yy: number) => img.px[(yy * img.w + xx) * 3 + k];
        const top = (1 - tx.l) * at(tx.i0, ty.i0) + tx.l * at(tx.i1, ty.i0);
        const bottom = (1 - tx.l) * at(tx.i0, ty.i1) + tx.l * at(tx.i1, ty.i1);
        px[(y * outW + x) * 3 + k] = (1 - ty.l) * top + ty.l * bottom;
      }
    }
  }
  return { w: outW, h: outH, ch: 3, px };
}

/** The whole pipeline in float64; output [C, H, W] (or [H, W, C]) of one image. */
function refPipeline(src: ImageBytes, o: PreprocessOptions): Float64Array {
  let img = toRgb(src);
  const gray = src.channels === 1 || src.data.length === src.width * src.height;
  if (o.resize !== undefined) {
    let [h, w] = typeof o.resize === 'number' ? [0, 0] : o.resize;
    if (typeof o.resize === 'number') {
      // torchvision _compute_resized_output_size
      const short = Math.min(img.w, img.h);
      const long = Math.max(img.w, img.h);
      const newLong = Math.floor((o.resize * long) / short);
      [h, w] = img.w <= img.h ? [newLong, o.resize] : [o.resize, newLong];
    }
    img = refResize(img, h, w, o.interpolation ?? 'bilinear');
  }
  if (o.centerCrop !== undefined) {
    const [ch, cw] = typeof o.centerCrop === 'number' ? [o.centerCrop, o.centerCrop] : o.centerCrop;
    const pyRound = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
    const top = pyRound((img.h - ch) / 2);
    const left = pyRound((img.w - cw) / 2);
    const px = new Float64Array(cw * ch * 3);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) for (let k = 0; k < 3; k++) px[(y * cw + x) * 3 + k] = img.px[((y + top) * img.w + x + left) * 3 + k];
    img = { w: cw, h: ch, ch: 3, px };
  }
  if (o.flipHorizontal) {
    const px = new Float64Array(img.px.length);
    for (let y = 0; y < img.h; y++) for (let x = 0; x < img.w; x++) for (let k = 0; k < 3; k++) px[(y * img.w + x) * 3 + k] = img.px[(y * img.w + img.w - 1 - x) * 3 + k];
    img = { ...img, px };
  }
  const preset = IMAGE_PRESETS[o.preset ?? 'none'];
  const order = o.channelOrder ?? preset.channelOrder;
  const scale = o.scale ?? preset.scale;
  const rgbMean = o.mean ?? preset.mean;
  const rgbStd = o.std ?? preset.std;
  const channels = order === 'grayscale' ? 1 : 3;
  const pixels = img.w * img.h;
  const out = new Float64Array(channels * pixels);
  for (let p = 0; p < pixels; p++) {
    const [r, g, b] = [img.px[p * 3], img.px[p * 3 + 1], img.px[p * 3 + 2]];
    const values = order === 'grayscale' ? [gray ? r : 0.299 * r + 0.587 * g + 0.114 * b] : order === 'bgr' ? [b, g, r] : [r, g, b];
    const srcIndex = order === 'bgr' ? [2, 1, 0] : [0, 1, 2];
    for (let c = 0; c < channels; c++) {
      const m = rgbMean.length === 1 ? rgbMean[0] : rgbMean[srcIndex[c]];
      const s = rgbStd.length === 1 ? rgbStd[0] : rgbStd[srcIndex[c]];
      const v = (values[c] * scale - m) / s;
      out[o.layout === 'channels-last' ? p * channels + c : c * pixels + p] = v;
    }
  }
  return out;
}

function randomImage(seed: number, width: number, height: number, channels: 1 | 3 | 4): ImageBytes {
  const rng = mulberry32(seed);
  // Smooth content plus noise, so that interpolation weights matter.
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let k = 0; k < channels; k++) {
        const smooth = 128 + 100 * Math.sin((x * (k + 1)) / 5 + y / 7);
        data[(y * width + x) * channels + k] = Math.max(0, Math.min(255, Math.round(smooth + 40 * (rng() - 0.5))));
      }
    }
  }
  return { data, width, height, channels };
}

// ---------------------------------------------------------------------------------------------

let gpu: Engine;
// The other kernel family: one invocation per pixel where `gpu` (on a software adapter) runs
// one per row, or the reverse on a GPU.
let gpuOther: Engine;
let cpu: Engine;
beforeAll(async () => {
  gpu = await makeGpuEngine();
  gpuOther = await makeGpuEngine({ kernels: gpu.adapterInfo?.software ? 'parallel' : 'serial' });
  cpu = await createEngine({ backend: 'cpu' });
});
afterAll(() => {
  gpu?.dispose();
  gpuOther?.dispose();
  cpu?.dispose();
});

/** `fn` on the CPU backend, then on the WebGPU backend with each kernel family. */
const onBoth = async (fn: (engine: Engine) => Promise<void>) => {
  await fn(cpu);
  await withValidation(gpu, () => fn(gpu));
  await withValidation(gpuOther, () => fn(gpuOther));
};

describe('golden image_normalize cases (uint8 HWC RGB -> float32 CHW)', () => {
  test('the manifest has image cases', () => expect(imageCases.length).toBeGreaterThan(0));
  for (const c of imageCases) {
    test(`${c.id} on both backends within 1e-5`, async () => {
      const [h, w] = c.shape;
      const data = new Uint8Array(file(c.input));
      const expected = new Float32Array(file(c.output));
      const order = c.params.channel_order.toLowerCase() as 'rgb' | 'bgr';
      await onBoth(async (engine) => {
        const y = await preprocess(engine, { data, width: w, height: h }, {
          mean: c.params.mean, std: c.params.std, scale: c.params.scale, channelOrder: order,
        }).read();
        const err = scaledError(y, expected);
        console.log(`[golden ${c.id} ${engine.backend}] scaled error ${err.toExponential(2)}`);
        expect(err, worstElement(y, expected)).toBeLessThanOrEqual(1e-5);
      });
    });
  }
  test('the presets are the golden parameters: imagenet and caffe', async () => {
    for (const c of imageCases) {
      const [h, w] = c.shape;
      const preset = c.id.endsWith('caffe') ? 'caffe' : 'imagenet';
      const y = await preprocess(cpu, { data: new Uint8Array(file(c.input)), width: w, height: h }, { preset }).read();
      expect(scaledError(y, new Float32Array(file(c.output)))).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('against a float64 reference of the same conventions', () => {
  const cases: [string, ImageBytes, PreprocessOptions][] = [
    ['downscale bilinear, non-integer ratio', randomImage(1, 61, 47, 3), { resize: [20, 27], preset: 'imagenet' }],
    ['upscale bilinear (clamped borders)', randomImage(2, 9, 7, 3), { resize: [23, 30] }],
    ['nearest (nearest-exact) both ways', randomImage(3, 37, 13, 4), { resize: [29, 17], interpolation: 'nearest', preset: 'inception' }],
    ['Resize(int) + CenterCrop + flip, imagenet', randomImage(4, 64, 48, 4), { resize: 32, centerCrop: 28, flipHorizontal: true, preset: 'imagenet' }],
    ['portrait Resize(int), odd crop offsets, BGR caffe', randomImage(5, 30, 53, 3), { resize: 21, centerCrop: [30, 18], preset: 'caffe' }],
    ['grayscale luma, channels-last', randomImage(6, 40, 40, 3), { resize: [17, 19], channelOrder: 'grayscale', mean: [0.5], std: [0.25], layout: 'channels-last' }],
    ['1-channel source, bgr, crop only', randomImage(7, 25, 21, 1), { centerCrop: [15, 20], channelOrder: 'bgr', preset: 'imagenet' }],
    ['1-channel source to grayscale passes through', randomImage(8, 12, 10, 1), { channelOrder: 'grayscale', scale: 1 }],
    ['zero-center, no resize, channels-last', randomImage(9, 33, 31, 4), { preset: 'zero-center', mean: [0.4, 0.5, 0.6], layout: 'channels-last' }],
  ];
  for (const [name, img, options] of cases) {
    test(name, async () => {
      const expected = refPipeline(img, options);
      const outputs: Float32Array[] = [];
      await onBoth(async (engine) => {
        const y = await preprocess(engine, img, options).read();
        const err = scaledError(y, expected);
        expect(err, `${engine.backend}: ${worstElement(y, expected)}`).toBeLessThanOrEqual(engine.backend === 'cpu' ? 1e-7 : 1e-5);
        outputs.push(y);
      });
      // GPU (both kernel families) against the CPU twin.
      expect(scaledError(outputs[1], outputs[0])).toBeLessThanOrEqual(1e-5);
      expect(scaledError(outputs[2], outputs[0])).toBeLessThanOrEqual(1e-5);
    });
  }

  test('torchvision geometry: Resize(int) sizes and CenterCrop offsets (Python rounding)', () => {
    expect(resizedSize(640, 480, 256)).toEqual([256, 341]);
    expect(resizedSize(480, 640, 256)).toEqual([341, 256]);
    expect(resizedSize(500, 500, 224)).toEqual([224, 224]);
    expect(resizedSize(1920, 1080, 224)).toEqual([224, 398]);
    expect([0.5, 1.5, 2.5, 3, 3.5].map(roundHalfEven)).toEqual([0, 2, 2, 3, 4]);
    const spec = planPreprocess({ data: new Uint8Array(9 * 7 * 3), width: 9, height: 7 }, { centerCrop: [2, 4] });
    expect(spec.images[0]).toMatchObject({ cropTop: 2, cropLeft: 2 }); // (7-2)/2 = 2.5 -> 2, (9-4)/2 = 2.5 -> 2
  });
});

describe('batches and sources', () => {
  test('a batch of mixed sizes and channel counts is one tensor equal to its images one by one', async () => {
    const images = [randomImage(10, 50, 40, 3), randomImage(11, 31, 45, 4), randomImage(12, 20, 20, 1)];
    const options: PreprocessOptions = { resize: 24, centerCrop: 20, preset: 'imagenet' };
    await onBoth(async (engine) => {
      const batch = preprocess(engine, images, options);
      expect(batch.shape).toEqual([3, 3, 20, 20]);
      const all = await batch.read();
      for (let i = 0; i < images.length; i++) {
        const one = await preprocess(engine, images[i], options).read();
        expect(Array.from(all.subarray(i * 1200, (i + 1) * 1200))).toEqual(Array.from(one));
      }
    });
  });

  test('channels-last is the transpose of channels-first', async () => {
    const img = randomImage(13, 30, 20, 3);
    await onBoth(async (engine) => {
      const first = await preprocess(engine, [img, img], { resize: [10, 12] }).read();
      const lastT = preprocess(engine, [img, img], { resize: [10, 12], layout: 'channels-last' });
      expect(lastT.shape).toEqual([2, 10, 12, 3]);
      expect(lastT.layout).toBe('channels-last');
      const last = await lastT.read();
      for (let i = 0; i < first.length; i++) {
        const n = Math.floor(i / 360);
        const c = Math.floor(i / 120) % 3;
        const p = i % 120;
        expect(last[n * 360 + p * 3 + c]).toBe(first[i]);
      }
    });
  });

  test('GPUTexture sources (rgba8unorm, bgra8unorm) go through main_texture and match the bytes path', async () => {
    const device = gpu.device!;
    const img = randomImage(14, 23, 17, 4);
    const options: PreprocessOptions = { resize: 12, centerCrop: 10, preset: 'imagenet' };
    const expected = await preprocess(cpu, img, options).read();
    for (const format of ['rgba8unorm', 'bgra8unorm'] as const) {
      const texture = device.createTexture({ size: [23, 17], format, usage: 0x01 | 0x02 | 0x04 }); // COPY_SRC | COPY_DST | TEXTURE_BINDING
      const texels = new Uint8Array(img.data);
      if (format === 'bgra8unorm') for (let p = 0; p < texels.length; p += 4) [texels[p], texels[p + 2]] = [texels[p + 2], texels[p]];
      device.queue.writeTexture({ texture }, texels, { bytesPerRow: 23 * 4 }, [23, 17]);
      await withValidation(gpu, async () => {
        const y = await preprocess(gpu, texture, options).read();
        expect(scaledError(y, expected), format).toBeLessThanOrEqual(1e-5);
        // Mixed batch: the bytes image becomes a texture layer too.
        const both = await preprocess(gpu, [texture, randomImage(15, 11, 19, 3)], options).read();
        expect(scaledError(both.subarray(0, 300), expected)).toBeLessThanOrEqual(1e-5);
        const second = await preprocess(cpu, randomImage(15, 11, 19, 3), options).read();
        expect(scaledError(both.subarray(300), second)).toBeLessThanOrEqual(1e-5);
      });
      texture.destroy();
    }
  });

  test('shapes and options never add pipelines beyond their specialisations', async () => {
    const device = gpu.device!;
    await withValidation(gpu, async () => {
      preprocess(gpu, randomImage(16, 20, 20, 3), { resize: [8, 8] }).dispose();
      const before = cachedPipelineCount(device);
      for (const [w, h] of [[31, 17], [64, 9], [5, 70]]) {
        preprocess(gpu, randomImage(17, w, h, 3), { resize: [w % 13 + 3, h % 11 + 2], preset: 'caffe' }).dispose();
      }
      expect(cachedPipelineCount(device)).toBe(before);
    });
  });
});

describe('typed errors before any GPU work', () => {
  const img = { data: new Uint8Array(4 * 3 * 3), width: 4, height: 3 };
  const bad: [string, () => unknown, string][] = [
    ['wrong byte length', () => preprocess(gpu, { data: new Uint8Array(4 * 3 * 3 + 1), width: 4, height: 3 }), 'DATA_LENGTH_MISMATCH'],
    ['byte length against explicit channels', () => preprocess(gpu, { data: new Uint8Array(36), width: 4, height: 3, channels: 4 }), 'DATA_LENGTH_MISMATCH'],
    ['zero-sized image', () => preprocess(gpu, { data: new Uint8Array(0), width: 0, height: 3 }), 'EMPTY_IMAGE'],
    ['crop larger than the image', () => preprocess(gpu, img, { centerCrop: [3, 5] }), 'CROP_TOO_LARGE'],
    ['crop larger than the resized image', () => preprocess(gpu, img, { resize: 2, centerCrop: 3 }), 'CROP_TOO_LARGE'],
    ['std of 0', () => preprocess(gpu, img, { mean: [0.5, 0.5, 0.5], std: [0.2, 0, 0.2] }), 'ZERO_STD'],
    ['mean of the wrong channel count', () => preprocess(gpu, img, { mean: [0.5, 0.5] }), 'CHANNEL_MISMATCH'],
    ['std of 3 for grayscale', () => preprocess(gpu, img, { channelOrder: 'grayscale', std: [1, 1, 1] }), 'CHANNEL_MISMATCH'],
    ['2 bytes per pixel', () => preprocess(gpu, { data: new Uint8Array(24), width: 4, height: 3, channels: 2 as 3 }), 'CHANNEL_MISMATCH'],
    ['batch of different sizes without resize', () => preprocess(gpu, [img, { data: new Uint8Array(27), width: 3, height: 3 }]), 'IMAGE_SIZE_MISMATCH'],
    ['not an image', () => preprocess(gpu, 42 as never), 'UNSUPPORTED_SOURCE'],
    ['a GPUTexture on the CPU backend', () => preprocess(cpu, gpu.device!.createTexture({ size: [2, 2], format: 'rgba8unorm', usage: 0x05 })), 'UNSUPPORTED_SOURCE'],
    ['an empty batch', () => preprocess(gpu, []), 'EMPTY_TENSOR'],
    ['zero-center without a mean', () => preprocess(gpu, img, { preset: 'zero-center' }), 'INVALID_ARGUMENT'],
    ['unknown preset', () => preprocess(gpu, img, { preset: 'vgg' as never }), 'INVALID_ARGUMENT'],
    ['resize of 0', () => preprocess(gpu, img, { resize: 0 }), 'INVALID_ARGUMENT'],
  ];
  for (const [name, fn, code] of bad) {
    test(`${name}: ${code}`, async () => {
      const work = trackGpuWork(gpu);
      let caught: unknown;
      try {
        fn();
      } catch (e) {
        caught = e;
      } finally {
        work.restore();
      }
      expect(caught).toBeInstanceOf(NormGpuError);
      expect((caught as NormGpuError).code).toBe(code);
      expect(work.log).toEqual([]);
    });
  }
});
