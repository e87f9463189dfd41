/**
 * `preprocess` from browser image sources in headless Chromium, on the built bundle
 * (`dist/normgpu.js`; `npm test` builds first): HTMLCanvasElement, OffscreenCanvas,
 * ImageBitmap, HTMLImageElement, VideoFrame and ImageData, on WebGPU with both kernel families
 * (GPU-side copyExternalImageToTexture + textureLoad, and the software-adapter path that reads
 * DOM images as bytes) and on the CPU backend (2-D canvas). Every result must equal the CPU
 * twin's result on the image's bytes. WebGPU work runs in validation error scopes. Without
 * Chromium this test fails; it never skips.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { forwardPageProblems, launchChromium, REPO_ROOT, serveStatic, type LaunchedBrowser, type StaticServer } from './harness';

const DIST = join(REPO_ROOT, 'dist');

let chromium: LaunchedBrowser | undefined;
let server: StaticServer | undefined;

beforeAll(async () => {
  if (!existsSync(join(DIST, 'normgpu.js'))) throw new Error('dist/normgpu.js is missing: run `npm run build` first (npm test does)');
  server = await serveStatic({ '/dist/': DIST, '/': join(REPO_ROOT, 'test', 'browser') });
  chromium = await launchChromium();
});

afterAll(async () => {
  await chromium?.close();
  await server?.close();
});

// Runs in the page (a string: vitest's transform must not touch it). Returns JSON rows
// { engine, source, error } with the max |difference| from the reference, or a failure.
const IN_PAGE = String.raw`(async () => {
  const { createEngine, preprocess } = await import('/dist/normgpu.js');
  const W = 61, H = 47;
  const canvas = document.createElement('canvas');
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      ctx.fillStyle = 'rgb(' + ((x * 37 + y * 11) % 256) + ',' + ((x * 5 + y * 23) % 256) + ',' + ((x * y) % 256) + ')';
      ctx.fillRect(x, y, 1, 1);
    }
  }
  const imageData = ctx.getImageData(0, 0, W, H);
  const offscreen = new OffscreenCanvas(W, H);
  offscreen.getContext('2d').putImageData(imageData, 0, 0);
  const bitmap = await createImageBitmap(imageData);
  const img = new Image();
  img.src = canvas.toDataURL('image/png');
  await img.decode();
  const frame = new VideoFrame(canvas, { timestamp: 0 });
  const sources = { canvas, offscreen, bitmap, img, frame, imageData };
  const options = { preset: 'imagenet', resize: 24, centerCrop: [20, 22], flipHorizontal: true };

  const cpu = await createEngine({ backend: 'cpu' });
  const bytes = { data: new Uint8Array(imageData.data), width: W, height: H, channels: 4 };
  const expected = await preprocess(cpu, bytes, options).read();
  const engines = {
    'webgpu (auto kernels)': await createEngine({ backend: 'webgpu' }),
    'webgpu (parallel kernels: copyExternalImageToTexture)': await createEngine({ backend: 'webgpu', kernels: 'parallel' }),
    cpu,
  };
  const rows = [];
  for (const [engineName, engine] of Object.entries(engines)) {
    for (const [sourceName, source] of Object.entries(sources)) {
      const device = engine.device;
      device?.pushErrorScope('validation');
      try {
        const y = await preprocess(engine, source, options).read();
        let error = y.length === expected.length ? 0 : Infinity;
        for (let i = 0; i < expected.length; i++) error = Math.max(error, Math.abs(y[i] - expected[i]) / (1 + Math.abs(expected[i])));
        // A batch of this source and the bytes.
        const batch = await preprocess(engine, [source, bytes], options).read();
        for (let i = 0; i < batch.length; i++) error = Math.max(error, Math.abs(batch[i] - expected[i % expected.length]) / (1 + Math.abs(expected[i % expected.length])));
        const gpuError = await device?.popErrorScope();
        rows.push({ engine: engineName, source: sourceName, error, gpuError: gpuError ? gpuError.message : null });
      } catch (e) {
        await device?.popErrorScope();
        rows.push({ engine: engineName, source: sourceName, error: null, failure: String(e) });
      }
    }
  }
  // A batch of every source at once.
  for (const [engineName, engine] of Object.entries(engines)) {
    const batch = await preprocess(engine, Object.values(sources), options).read();
    let error = 0;
    for (let i = 0; i < batch.length; i++) error = Math.max(error, Math.abs(batch[i] - expected[i % expected.length]) / (1 + Math.abs(expected[i % expected.length])));
    rows.push({ engine: engineName, source: 'all six', error });
  }
  frame.close();
  for (const e of Object.values(engines)) e.dispose();
  return JSON.stringify(rows);
})()`;

test('every browser image source gives the bytes path result on every backend', async () => {
  const page = await chromium!.browser.newPage();
  forwardPageProblems(page);
  await page.goto(`${server!.url}/page.html`);
  const rows = JSON.parse((await page.evaluate(IN_PAGE)) as string) as {
    engine: string; source: string; error: number | null; gpuError?: string | null; failure?: string;
  }[];
  for (const r of rows) console.log(`[browser preprocess] ${r.engine.padEnd(54)} ${r.source.padEnd(10)} ${r.failure ?? r.gpuError ?? r.error?.toExponential(2)}`);
  expect(rows.length).toBe(21);
  for (const r of rows) {
    expect(r.failure, `${r.engine} / ${r.source}`).toBeUndefined();
    expect(r.gpuError ?? null, `${r.engine} / ${r.source}`).toBeNull();
    expect(r.error!, `${r.engine} / ${r.source}`).toBeLessThanOrEqual(1e-5);
  }
  await page.close();
});

// resizeMode 'fast' on the software adapter: each engine shrinks DOM images on one canvas that
// it reuses, resized or cleared per call. Every call must give what a fresh canvas gives: the
// crop window drawn straight to the output size, then the bytes path (CPU backend). The source
// is translucent, so a canvas not cleared between two calls of one size would show.
const IN_PAGE_FAST = String.raw`(async () => {
  const { createEngine, planPreprocess, preprocess } = await import('/dist/normgpu.js');
  const W = 90, H = 70;
  const src = new OffscreenCanvas(W, H);
  const ctx = src.getContext('2d');
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      ctx.fillStyle = 'rgba(' + ((x * 37 + y * 11) % 256) + ',' + ((x * 5 + y * 23) % 256) + ',' + ((x * y) % 256) + ',' + (0.3 + 0.1 * ((x + y) % 8)) + ')';
      ctx.fillRect(x, y, 1, 1);
    }
  }
  const bitmap = await createImageBitmap(src);
  const gpu = await createEngine({ backend: 'webgpu' });
  const cpu = await createEngine({ backend: 'cpu' });
  async function fresh(options) {
    const spec = planPreprocess(bitmap, options);
    const g = spec.images[0];
    const kx = g.srcW / g.resizedW, ky = g.srcH / g.resizedH;
    const c = new OffscreenCanvas(spec.outW, spec.outH).getContext('2d', { willReadFrequently: true });
    c.imageSmoothingEnabled = !spec.nearest;
    c.drawImage(bitmap, g.cropLeft * kx, g.cropTop * ky, spec.outW * kx, spec.outH * ky, 0, 0, spec.outW, spec.outH);
    const { resize, centerCrop, resizeMode, ...rest } = options;
    return preprocess(cpu, c.getImageData(0, 0, spec.outW, spec.outH), rest).read();
  }
  const calls = [
    { resize: 40, centerCrop: [30, 36] },
    { resize: 24, centerCrop: 20, interpolation: 'nearest' },
    { resize: 40, centerCrop: [30, 36], flipHorizontal: true },
    { resize: 40, centerCrop: [30, 36], interpolation: 'nearest' },
    { resize: 40, centerCrop: [30, 36] },
  ];
  const rows = [];
  for (const call of calls) {
    const options = { preset: 'imagenet', resizeMode: 'fast', ...call };
    gpu.device.pushErrorScope('validation');
    const y = await preprocess(gpu, bitmap, options).read();
    const gpuError = await gpu.device.popErrorScope();
    const expected = await fresh(options);
    let error = y.length === expected.length ? 0 : Infinity;
    for (let i = 0; i < expected.length; i++) error = Math.max(error, Math.abs(y[i] - expected[i]) / (1 + Math.abs(expected[i])));
    rows.push({ call: JSON.stringify(call), error, gpuError: gpuError ? gpuError.message : null });
  }
  const software = gpu.adapterInfo.software;
  gpu.dispose();
  cpu.dispose();
  return JSON.stringify({ software, rows });
})()`;

test("resizeMode 'fast' reuses its canvas across calls of different sizes and gives what a fresh one gives", async () => {
  const page = await chromium!.browser.newPage();
  forwardPageProblems(page);
  await page.goto(`${server!.url}/page.html`);
  const { software, rows } = JSON.parse((await page.evaluate(IN_PAGE_FAST)) as string) as {
    software: boolean; rows: { call: string; error: number; gpuError: string | null }[];
  };
  for (const r of rows) console.log(`[browser preprocess fast] ${r.call.padEnd(70)} ${r.gpuError ?? r.error.toExponential(2)}`);
  expect(software, "'fast' shrinks on the host only on a software adapter").toBe(true);
  expect(rows.length).toBe(5);
  for (const r of rows) {
    expect(r.gpuError, r.call).toBeNull();
    expect(r.error, r.call).toBeLessThanOrEqual(1e-5);
  }
  await page.close();
});
