/**
 * `npm run bench:preprocess`: image to tensor for a 1920x1080 RGBA frame to a 224x224
 * ImageNet tensor (Resize(224) + CenterCrop(224) + normalize, channels-first) in headless
 * Chromium, normgpu's fused GPU dispatch against the same work done the way transformers.js
 * preprocesses in a browser: resize and crop with a 2-D canvas, getImageData, then a JS loop
 * that scales, normalizes and moves channels first. Prints median times and their ratio, and
 * writes bench/preprocess-results.json.
 *
 *   npm run bench:preprocess -- [--iterations N] [--no-build]
 *
 * Timings: GPU "tensor ready" waits for queue.onSubmittedWorkDone() (the tensor stays on the
 * GPU, where a WebGPU model would read it); "with readback" adds copying it to a Float32Array.
 * Both start from an ImageBitmap of the frame, as the canvas path does.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { forwardPageProblems, launchChromium, serveStatic } from '../test/browser/harness';
import { cliArgs, positiveInt } from './cli-args';

// The bundle runs from node_modules/.cache/normgpu-bench/.
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const USAGE = 'usage: npm run bench:preprocess -- [--iterations N] [--no-build]';

/** The page: builds the frame, runs both paths, returns medians (ms) as JSON. */
const PAGE = String.raw`<!doctype html>
<meta charset="utf-8"><title>normgpu preprocess bench</title><link rel="icon" href="data:,">
<script type="module">
import { createEngine, preprocess } from '/dist/normgpu.js';
const W = 1920, H = 1080, S = 224;
const MEAN = [0.485, 0.456, 0.406], STD = [0.229, 0.224, 0.225];

function makeFrame() {
  const canvas = new OffscreenCanvas(W, H);
  const ctx = canvas.getContext('2d');
  const g = ctx.createLinearGradient(0, 0, W, H);
  g.addColorStop(0, '#1d3557'); g.addColorStop(0.5, '#e9c46a'); g.addColorStop(1, '#e63946');
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, W, H);
  for (let i = 0; i < 300; i++) {
    ctx.fillStyle = 'hsl(' + ((i * 47) % 360) + ' 70% 50% / 0.6)';
    ctx.beginPath();
    ctx.arc((i * 373) % W, (i * 197) % H, 10 + (i % 60), 0, 2 * Math.PI);
    ctx.fill();
  }
  return canvas;
}

// transformers.js in a browser: RawImage.resize and center_crop draw on canvases, then the
// image processor rescales and normalizes the RGB bytes and permutes HWC to CHW.
function canvasPath(frame) {
  const rw = Math.floor(S * W / H);
  return canvasFinish(frame, rw);
}

// The same from the frame's bytes: they reach a canvas through putImageData first.
function canvasPathFromBytes(bytes) {
  const full = new OffscreenCanvas(W, H);
  full.getContext('2d').putImageData(bytes, 0, 0);
  return canvasFinish(full, Math.floor(S * W / H));
}

function canvasFinish(frame, rw) {
  const resized = new OffscreenCanvas(rw, S);
  resized.getContext('2d').drawImage(frame, 0, 0, rw, S);
  const cropped = new OffscreenCanvas(S, S);
  const ctx = cropped.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(resized, Math.round((rw - S) / 2), 0, S, S, 0, 0, S, S);
  const rgba = ctx.getImageData(0, 0, S, S).data;
  const out = new Float32Array(3 * S * S);
  const plane = S * S;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = (rgba[p * 4 + c] / 255 - MEAN[c]) / STD[c];
  }
  return out;
}

async function median(iterations, fn) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

window.runBench = async (iterations) => {
  const canvas = makeFrame();
  const frame = await createImageBitmap(canvas);
  const bytes = canvas.getContext('2d').getImageData(0, 0, W, H);
  const engine = await createEngine({ backend: 'webgpu' });
  const device = engine.device;
  const options = { preset: 'imagenet', resize: S, centerCrop: S };
  try {
    const gpu = await median(iterations, async () => {
      const t = preprocess(engine, frame, options);
      await device.queue.onSubmittedWorkDone();
      t.dispose();
    });
    const gpuRead = await median(iterations, async () => {
      const t = preprocess(engine, frame, options);
      await t.read();
      t.dispose();
    });
    const gpuBytes = await median(iterations, async () => {
      const t = preprocess(engine, bytes, options);
      await device.queue.onSubmittedWorkDone();
      t.dispose();
    });
    // Where the time goes: the browser's copy of the frame into a texture alone, and
    // preprocess from a GPUTexture already on the device (a WebGPU canvas, an imported frame).
    const texture = device.createTexture({ size: [W, H], format: 'rgba8unorm', usage: 0x01 | 0x02 | 0x04 | 0x10 });
    const copyOnly = await median(iterations, async () => {
      device.queue.copyExternalImageToTexture({ source: frame }, { texture }, [W, H]);
      await device.queue.onSubmittedWorkDone();
    });
    const gpuTexture = await median(iterations, async () => {
      const t = preprocess(engine, texture, options);
      await device.queue.onSubmittedWorkDone();
      t.dispose();
    });
    texture.destroy();
    // resizeMode 'fast': a software adapter shrinks the frame with the canvas before the upload.
    const fast = { ...options, resizeMode: 'fast' };
    const gpuFast = await median(iterations, async () => {
      const t = preprocess(engine, frame, fast);
      await device.queue.onSubmittedWorkDone();
      t.dispose();
    });
    const gpuBytesFast = await median(iterations, async () => {
      const t = preprocess(engine, bytes, fast);
      await device.queue.onSubmittedWorkDone();
      t.dispose();
    });
    const cpu = await median(iterations, async () => canvasPath(frame));
    const cpuBytes = await median(iterations, async () => canvasPathFromBytes(bytes));
    // The two paths compute the same tensor up to the canvas's own resampling.
    const a = canvasPath(frame);
    const t = preprocess(engine, frame, options);
    const b = await t.read();
    t.dispose();
    const tf = preprocess(engine, frame, fast);
    const f = await tf.read();
    tf.dispose();
    let diff = 0;
    let fastDiff = 0;
    for (let i = 0; i < a.length; i++) {
      diff += Math.abs(a[i] - b[i]);
      fastDiff += Math.abs(f[i] - b[i]);
    }
    return JSON.stringify({
      gpu, gpuRead, gpuBytes, gpuTexture, copyOnly, gpuFast, gpuBytesFast, cpu, cpuBytes,
      meanAbsDiff: diff / a.length, fastMeanAbsDiff: fastDiff / a.length, adapter: engine.adapterInfo,
    });
  } finally {
    engine.dispose();
  }
};
window.benchReady = true;
</script>`;

interface PageResult {
  gpu: number;
  gpuRead: number;
  gpuBytes: number;
  gpuTexture: number;
  copyOnly: number;
  gpuFast: number;
  gpuBytesFast: number;
  cpu: number;
  cpuBytes: number;
  meanAbsDiff: number;
  fastMeanAbsDiff: number;
  adapter: { vendor: string; architecture: string; description: string } | null;
}

async function main(): Promise<number> {
  const values = cliArgs({ iterations: { type: 'string' }, 'no-build': { type: 'boolean', default: false } }, USAGE);
  const iterations = positiveInt('iterations', values.iterations, 20, USAGE);
  if (!values['no-build']) await build({ root: REPO_ROOT, configFile: join(REPO_ROOT, 'vite.config.ts'), logLevel: 'warn' });

  const pageDir = mkdtempSync(join(tmpdir(), 'normgpu-bench-preprocess-'));
  writeFileSync(join(pageDir, 'index.html'), PAGE);
  const server = await serveStatic({ '/dist/': join(REPO_ROOT, 'dist'), '/': pageDir });
  const chromium = await launchChromium();
  try {
    const page = await chromium.browser.newPage();
    forwardPageProblems(page);
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.benchReady === true', { timeout: 60_000 });
    const r = JSON.parse((await page.evaluate(`window.runBench(${iterations})`)) as string) as PageResult;
    const adapter = r.adapter ? `${r.adapter.vendor} ${r.adapter.architecture} (${r.adapter.description})` : 'unknown';
    const rows: [string, number][] = [
      ['normgpu preprocess, ImageBitmap, tensor ready on the GPU', r.gpu],
      ['normgpu preprocess, ImageBitmap, with readback', r.gpuRead],
      ['normgpu preprocess, ImageData bytes, tensor ready on the GPU', r.gpuBytes],
      ['normgpu preprocess, GPUTexture already on the device', r.gpuTexture],
      ['  (copyExternalImageToTexture of the frame alone)', r.copyOnly],
      ["normgpu resizeMode 'fast', ImageBitmap, tensor ready on the GPU", r.gpuFast],
      ["normgpu resizeMode 'fast', ImageData bytes, tensor ready on the GPU", r.gpuBytesFast],
      ['2-D canvas resize/crop + JS normalize loop (transformers.js style)', r.cpu],
      ['  the same from the ImageData bytes (putImageData first)', r.cpuBytes],
    ];
    console.log(`1920x1080 RGBA frame -> [1, 3, 224, 224] ImageNet tensor, median of ${iterations}`);
    console.log(`adapter: ${adapter}; ${cpus().length} CPU cores; ${await chromium.browser.version()}`);
    for (const [name, ms] of rows) console.log(`  ${name.padEnd(68)} ${ms.toFixed(2).padStart(8)} ms`);
    const ratio = r.cpu / r.gpu;
    console.log(`ratio (canvas + JS loop) / (normgpu, tensor on the GPU): ${ratio.toFixed(2)}x`);
    console.log(`ratio (canvas + JS loop) / (normgpu with readback):      ${(r.cpu / r.gpuRead).toFixed(2)}x`);
    console.log(`ratio with resizeMode 'fast': ${(r.cpu / r.gpuFast).toFixed(2)}x from the ImageBitmap, ${(r.cpuBytes / r.gpuBytesFast).toFixed(2)}x from bytes (canvas path from the same bytes)`);
    console.log(`mean |difference| of 'fast' and 'exact': ${r.fastMeanAbsDiff.toExponential(2)}`);
    console.log(`mean |difference| of the two tensors: ${r.meanAbsDiff.toExponential(2)} (the canvas resamples its own way)`);
    mkdirSync(join(REPO_ROOT, 'bench'), { recursive: true });
    const out = join(REPO_ROOT, 'bench', 'preprocess-results.json');
    writeFileSync(out, JSON.stringify({ iterations, adapter: r.adapter, cores: cpus().length, ms: r, ratio, fastRatio: r.cpu / r.gpuFast, fastBytesRatio: r.cpuBytes / r.gpuBytesFast }, null, 1) + '\n');
    console.log(`written ${out}`);
    return 0;
  } finally {
    await chromium.close();
    await server.close();
    rmSync(pageDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
