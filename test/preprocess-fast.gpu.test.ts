/**
 * `preprocess(..., { resizeMode: 'fast' })`: on a software adapter (this machine's SwiftShader)
 * resized byte images are shrunk to their crop window on the host before the upload. The
 * result is the kernel's taps (torchvision's bilinear or nearest) rounded to bytes: within a byte's rounding of
 * the exact path, and exactly the exact path applied to those shrunk bytes (a batch shrunk whole
 * is finished on the host: the kernel's float32 values, no dispatch). GPU-shaped plans and the
 * CPU backend stay exact.
 */
import { describe, expect, test } from 'vitest';
import { createEngine, planPreprocess, preprocess, type Engine, type ImageBytes, type PreprocessOptions } from '../src/index';
import { axisTaps } from '../src/plan/preprocess';
import { makeGpuEngine, mulberry32, withEngines, withValidation } from './support/gpu';

let gpu: Engine;
let parallel: Engine;
let cpu: Engine;

withEngines(async () => [
  gpu = await makeGpuEngine(), parallel = await makeGpuEngine({ kernels: 'parallel' }), cpu = await createEngine({ backend: 'cpu' }),
]);

function image(width: number, height: number, channels: 1 | 3 | 4, seed: number): ImageBytes {
  const r = mulberry32(seed);
  // Smooth ramps plus noise: bilinear taps differ, so a wrong tap shows.
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = (x * (c + 1) + y * 3 + Math.floor(r() * 40)) & 255;
    }
  }
  return { data, width, height, channels };
}

async function run(engine: Engine, src: ImageBytes | ImageBytes[], options: PreprocessOptions): Promise<Float32Array> {
  const go = async () => {
    const t = preprocess(engine, src, options);
    const y = await t.read();
    t.dispose();
    return y;
  };
  return engine.device ? withValidation(engine, go) : go();
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** The bytes 'fast' uploads for one image: the kernel's taps over the crop window, its blend, rounded. */
function shrunk(src: ImageBytes, options: PreprocessOptions): ImageBytes {
  const { outW, outH, nearest, images: [g] } = planPreprocess(src, options);
  const ch = src.channels!;
  const out = new Uint8Array(outW * outH * ch);
  for (let y = 0; y < outH; y++) {
    const ty = axisTaps(y + g.cropTop, g.srcH, g.resizedH, nearest);
    for (let x = 0; x < outW; x++) {
      const tx = axisTaps(x + g.cropLeft, g.srcW, g.resizedW, nearest);
      for (let c = 0; c < ch; c++) {
        const at = (yy: number, xx: number) => src.data[(yy * src.width + xx) * ch + c];
        const top = (1 - tx.f) * at(ty.i0, tx.i0) + tx.f * at(ty.i0, tx.i1);
        const bottom = (1 - tx.f) * at(ty.i1, tx.i0) + tx.f * at(ty.i1, tx.i1);
        out[(y * outW + x) * ch + c] = Math.round((1 - ty.f) * top + ty.f * bottom);
      }
    }
  }
  return { data: out, width: outW, height: outH, channels: ch };
}

describe("resizeMode 'fast' on a software adapter", () => {
  const cases: { name: string; src: () => ImageBytes; options: PreprocessOptions }[] = [
    { name: '320x240 RGBA, Resize(64) CenterCrop(56), ImageNet', src: () => image(320, 240, 4, 1), options: { preset: 'imagenet', resize: 64, centerCrop: 56 } },
    { name: '97x131 RGB, Resize([40, 30]), caffe, channels-last', src: () => image(97, 131, 3, 2), options: { preset: 'caffe', resize: [40, 30], layout: 'channels-last' } },
    { name: '200x150 gray, nearest, grayscale output', src: () => image(200, 150, 1, 3), options: { resize: 50, centerCrop: [40, 48], interpolation: 'nearest', channelOrder: 'grayscale' } },
    { name: 'an upscale with a flip', src: () => image(20, 16, 4, 4), options: { preset: 'inception', resize: 40, centerCrop: 32, flipHorizontal: true } },
  ];
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    expect(gpu.adapterInfo?.software, 'these checks need a software adapter').toBe(true);
    const src = c.src();
    const fast = await run(gpu, src, { ...c.options, resizeMode: 'fast' });
    const exact = await run(gpu, src, c.options);
    // Exactly the exact path on the shrunk bytes (the CPU backend: float64 of the same bytes).
    const reference = await run(cpu, shrunk(src, c.options), { ...c.options, resize: undefined, centerCrop: undefined });
    expect(maxDiff(fast, reference)).toBeLessThanOrEqual(2e-6 * Math.max(1, ...reference.map(Math.abs)));
    // Within a byte's rounding of the exact path: 0.5 / 255 * scale / std.
    const spec = planPreprocess(src, c.options);
    const bound = (0.5 + 1e-3) * 255 * spec.scale / Math.min(...spec.std.map(Math.abs)) / 255;
    expect(maxDiff(fast, exact)).toBeLessThanOrEqual(bound);
    // Nearest picks source bytes: nothing to round, 'fast' is exact. Bilinear's rounding shows.
    if (c.options.interpolation === 'nearest') expect(maxDiff(fast, exact)).toBe(0);
    else expect(maxDiff(fast, exact)).toBeGreaterThan(0);
  });

  test('only the output-sized image is uploaded', async () => {
    const src = image(640, 480, 4, 5);
    const options: PreprocessOptions = { preset: 'imagenet', resize: 64, centerCrop: 56 };
    const queue = gpu.device!.queue;
    const uploaded = async (o: PreprocessOptions) => {
      let bytes = 0;
      const original = queue.writeBuffer;
      queue.writeBuffer = function (this: GPUQueue, ...args: Parameters<GPUQueue['writeBuffer']>) {
        const data = args[2] as ArrayBuffer | ArrayBufferView;
        bytes += args[4] ?? data.byteLength;
        return original.apply(this, args);
      } as GPUQueue['writeBuffer'];
      try {
        await run(gpu, src, o);
      } finally {
        queue.writeBuffer = original;
      }
      return bytes;
    };
    expect(await uploaded(options)).toBeGreaterThanOrEqual(640 * 480 * 4);
    // The batch is shrunk whole, so the host finishes it: only the [1, 3, 56, 56] tensor goes up.
    expect(await uploaded({ ...options, resizeMode: 'fast' })).toBe(56 * 56 * 3 * 4);
  });

  test("a batch shrunk whole is finished on the host: no dispatch, the kernel's values bit for bit", async () => {
    const device = gpu.device!;
    const encoders = (o: PreprocessOptions, src: ImageBytes | ImageBytes[]) => {
      let count = 0;
      const original = device.createCommandEncoder;
      device.createCommandEncoder = function (this: GPUDevice, ...args: Parameters<GPUDevice['createCommandEncoder']>) {
        count++;
        return original.apply(this, args);
      } as GPUDevice['createCommandEncoder'];
      try {
        preprocess(gpu, src, o).dispose();
      } finally {
        device.createCommandEncoder = original;
      }
      return count;
    };
    const rgb = image(150, 100, 3, 10);
    expect(encoders({ resize: [32, 32], resizeMode: 'fast' }, [rgb, image(90, 80, 4, 11)])).toBe(0);
    expect(encoders({ resize: 32 }, rgb)).toBe(1);
    // The kernel itself on the shrunk bytes, for every layout, channel mix, source width and a flip.
    const more: PreprocessOptions[] = [
      { channelOrder: 'grayscale', mean: [0.45], std: [0.226], resize: 24, centerCrop: [20, 18] },
      { preset: 'caffe', channelOrder: 'grayscale', mean: [120.5], std: [1], resize: [30, 20], layout: 'channels-last', flipHorizontal: true },
    ];
    for (const [src, options] of [...cases.map((c) => [c.src(), c.options] as const), ...more.map((o) => [rgb, o] as const)]) {
      const fast = await run(gpu, src, { ...options, resizeMode: 'fast' });
      const kernel = await run(gpu, shrunk(src, options), { ...options, resize: undefined, centerCrop: undefined });
      expect(maxDiff(fast, kernel), JSON.stringify(options)).toBe(0);
    }
  });

  test('a batch mixes shrunk and unresized images; an image of the output size is read as is', async () => {
    const a = image(120, 90, 4, 6);
    const b = image(56, 56, 4, 7);
    const options: PreprocessOptions = { preset: 'imagenet', resize: [56, 56] };
    const fast = await run(gpu, [a, b], { ...options, resizeMode: 'fast' });
    const exact = await run(gpu, [a, b], options);
    const half = fast.length / 2;
    expect(maxDiff(fast.subarray(half), exact.subarray(half))).toBe(0);
    const ref = await run(cpu, shrunk(a, options), { preset: 'imagenet' });
    expect(maxDiff(fast.subarray(0, half), ref)).toBeLessThanOrEqual(1e-5);
  });
});

test("GPU-shaped plans and the CPU backend compute 'exact' whatever resizeMode says", async () => {
  const src = image(160, 120, 4, 8);
  const options: PreprocessOptions = { preset: 'imagenet', resize: 48, centerCrop: 40 };
  for (const engine of [parallel, cpu]) {
    const fast = await run(engine, src, { ...options, resizeMode: 'fast' });
    const exact = await run(engine, src, options);
    expect(maxDiff(fast, exact)).toBe(0);
  }
});

test('resizeMode is checked before any work', () => {
  expect(() => preprocess(gpu, image(8, 8, 4, 9), { resizeMode: 'quick' as never })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('resizeMode') }));
});
