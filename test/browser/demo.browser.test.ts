/**
 * End-to-end test of the demo page (issue 4) in headless Chromium: the built demo loads with
 * no console errors and states its backend and adapter; the playground normalizes the bundled
 * sample and the values it reports match a float64 reference computed here from the PNG; the
 * layer explorer agrees with the CPU backend; a short benchmark run completes and renders its
 * chart; the dataset tab's statistics of its generated sample set, and of a folder dropped on
 * it, match a float64 reference computed here from the same images' bytes; the interop tab's
 * pipeline through ONNX Runtime Web matches its CPU twin with no host round trip; `?backend=cpu`
 * shows the fallback notice.
 * Screenshots go to test-artifacts/.
 * Nothing here depends on a timing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'puppeteer';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { PNG } from 'pngjs';
import puppeteer from 'puppeteer';
import { findChromium, launchChromium, openDemo, REPO_ROOT, serveDemo, type DemoServer, type LaunchedBrowser } from './harness';

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

let demo: DemoServer | undefined;
let url = '';
let chromium: LaunchedBrowser | undefined;
const problems: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  demo = await serveDemo();
  url = demo.url;
  chromium = await launchChromium();
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await demo?.close();
});

beforeEach(() => {
  problems.length = 0;
});

/** A page that records every console error, uncaught exception and failed request. */
const open = (path: string): Promise<Page> => openDemo(chromium!.browser, url, path, problems);

const demoState = async (page: Page) => JSON.parse(await page.evaluate('JSON.stringify(window.demo)') as string) as {
  backend: string; adapter: string; notice: string | null; results: Record<string, Record<string, unknown>>;
};

interface PlaygroundReport {
  preset: string; width: number; height: number; channels: string[];
  usedMean: number[]; usedStd: number[]; outMean: number[]; outStd: number[]; outMin: number[]; outMax: number[];
  maxError: number; samples: [number, number, number, number][];
}

/** Float64 reference of the playground's presets, from the PNG decoded here. */
function expected(preset: string) {
  const png = PNG.sync.read(readFileSync(join(REPO_ROOT, 'demo', 'assets', 'sample.png')));
  const { width, height } = png;
  const plane = width * height;
  const byte = (c: number, i: number) => png.data[i * 4 + c];
  const channelMean = (c: number) => {
    let s = 0;
    for (let i = 0; i < plane; i++) s += byte(c, i) / 255;
    return s / plane;
  };
  const channelVar = (c: number, m: number) => {
    let s = 0;
    for (let i = 0; i < plane; i++) s += (byte(c, i) / 255 - m) ** 2;
    return s / plane;
  };
  // Output channel -> (source channel, scale, mean, std).
  const spec: { src: number; scale: number; mean: number; std: number }[] = [];
  for (let oc = 0; oc < 3; oc++) {
    if (preset === 'imagenet') spec.push({ src: oc, scale: 1 / 255, mean: [0.485, 0.456, 0.406][oc], std: [0.229, 0.224, 0.225][oc] });
    else if (preset === 'caffe') spec.push({ src: 2 - oc, scale: 1, mean: [103.939, 116.779, 123.68][oc], std: 1 });
    else if (preset === 'minus1to1') spec.push({ src: oc, scale: 1 / 255, mean: 0.5, std: 0.5 });
    else if (preset === 'zero-center') spec.push({ src: oc, scale: 1 / 255, mean: channelMean(oc), std: 1 });
    else if (preset === 'standardize') {
      const m = channelMean(oc);
      spec.push({ src: oc, scale: 1 / 255, mean: m, std: Math.sqrt(channelVar(oc, m) + 1e-5) });
    } else throw new Error(preset);
  }
  const value = (oc: number, i: number) => (byte(spec[oc].src, i) * spec[oc].scale - spec[oc].mean) / spec[oc].std;
  return {
    width, height,
    usedMean: spec.map((s) => s.mean),
    usedStd: spec.map((s) => s.std),
    outMean: spec.map((_, oc) => { let s = 0; for (let i = 0; i < plane; i++) s += value(oc, i); return s / plane; }),
    outStd: spec.map((_, oc) => {
      let s = 0;
      let q = 0;
      for (let i = 0; i < plane; i++) { const v = value(oc, i); s += v; q += v * v; }
      const m = s / plane;
      return Math.sqrt(q / plane - m * m);
    }),
    outMin: spec.map((_, oc) => { let v = Infinity; for (let i = 0; i < plane; i++) v = Math.min(v, value(oc, i)); return v; }),
    outMax: spec.map((_, oc) => { let v = -Infinity; for (let i = 0; i < plane; i++) v = Math.max(v, value(oc, i)); return v; }),
    at: (oc: number, y: number, x: number) => value(oc, y * width + x),
  };
}

const close = (actual: number, want: number, what: string) => {
  const tol = 2e-5 * Math.max(1, Math.abs(want));
  expect(Math.abs(actual - want), `${what}: page ${actual}, reference ${want}`).toBeLessThanOrEqual(tol);
};

test('the demo loads in headless Chromium, states backend and adapter, with no console errors', async () => {
  const page = await open('/');
  const state = await demoState(page);
  console.log(`[webgpu adapter] demo page: backend=${state.backend} adapter=${state.adapter}`);
  expect(state.backend).toBe('webgpu');
  expect(state.notice).toBeNull();
  const badge = await page.$eval('[data-testid=backend]', (e) => e.textContent ?? '');
  expect(badge).toContain('WebGPU');
  expect(badge).toContain(state.adapter);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-playground.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
});

test('the playground normalizes the bundled sample on the GPU and its reported values match the reference', async () => {
  const page = await open('/');
  for (const preset of ['imagenet', 'caffe', 'zero-center', 'standardize']) {
    if (preset !== 'imagenet') {
      await page.select('[data-testid=preset]', preset);
      await page.waitForFunction((p: string) => (window as unknown as { demo: { results: { playground?: { preset: string } } } }).demo.results.playground?.preset === p, { timeout: 60_000 }, preset);
    }
    const r = (await demoState(page)).results.playground as unknown as PlaygroundReport;
    const want = expected(preset);
    expect([r.width, r.height]).toEqual([want.width, want.height]);
    expect(r.channels).toEqual(preset === 'caffe' ? ['B', 'G', 'R'] : ['R', 'G', 'B']);
    expect(r.maxError, `${preset}: GPU vs CPU reference engine`).toBeLessThanOrEqual(1e-4 * Math.max(1, ...want.outMax.map(Math.abs)));
    for (let c = 0; c < 3; c++) {
      close(r.usedMean[c], want.usedMean[c], `${preset} mean used, channel ${c}`);
      close(r.usedStd[c], want.usedStd[c], `${preset} std used, channel ${c}`);
      close(r.outMean[c], want.outMean[c], `${preset} output mean, channel ${c}`);
      close(r.outStd[c], want.outStd[c], `${preset} output std, channel ${c}`);
      close(r.outMin[c], want.outMin[c], `${preset} output min, channel ${c}`);
      close(r.outMax[c], want.outMax[c], `${preset} output max, channel ${c}`);
    }
    for (const [c, y, x, v] of r.samples) close(v, want.at(c, y, x), `${preset} value at channel ${c} (${y}, ${x})`);
    // The table on the page shows the same figures.
    const shown = await page.$$eval('[data-testid=pg-stats] td[data-stat=outMean]', (tds) => tds.map((td) => Number(td.getAttribute('data-value'))));
    expect(shown).toEqual(r.outMean);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'demo-playground-standardize.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
});

test('the layer explorer matches the CPU reference and shows the statistics groups', async () => {
  const page = await open('/#explorer');
  await page.waitForFunction('window.demo.results.explorer', { timeout: 60_000 });
  await page.select('[data-testid=ex-op]', 'groupNorm');
  await page.waitForFunction("window.demo.results.explorer.op === 'groupNorm'", { timeout: 60_000 });
  const r = (await demoState(page)).results.explorer as { maxError: number; groups: number; shape: number[] };
  expect(r.maxError).toBeLessThanOrEqual(1e-4);
  expect(r.groups).toBe(2 * 4); // N = 2 samples x 4 groups (defaults)
  const cells = await page.$$eval('.diagram rect.cell', (rs) => new Set(rs.map((x) => x.getAttribute('data-g'))).size);
  expect(cells).toBe(8);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-explorer.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
});

test('a short benchmark run in the page completes and renders its table and chart', async () => {
  const page = await open('/#benchmark');
  await page.select('[data-testid=bench-scope]', 'quick');
  await page.$eval('[data-testid=bench-iterations]', (e) => { (e as HTMLInputElement).value = '3'; });
  await page.click('[data-testid=bench-run]');
  await page.waitForFunction('window.demo.results.benchmark', { timeout: 240_000, polling: 1000 });
  const r = (await demoState(page)).results.benchmark as { workloads: number; contenders: { id: string; error: string | null }[] };
  expect(r.workloads).toBe(14);
  expect(r.contenders.map((c) => c.id)).toEqual(['normgpu', 'normgpu-cpu', 'tfjs', 'ort-jsep', 'ort-jsep-nchw', 'ort-webgpu', 'ort-webgpu-nchw']);
  expect(r.contenders.filter((c) => c.error)).toEqual([]);
  const rows = await page.$$eval('[data-testid=bench-table] tr', (trs) => trs.length);
  expect(rows).toBe(1 + 14);
  const bars = await page.$$eval('[data-testid=bench-chart] svg rect', (rs) => rs.length);
  expect(bars).toBeGreaterThan(14);
  // Every workload has its access floor from the same run's ceilings.
  const xfloors = await page.$$eval('[data-testid=bench-table] td[data-xfloor]', (tds) => tds.map((td) => Number((td as HTMLElement).dataset.xfloor)));
  expect(xfloors).toHaveLength(14);
  for (const x of xfloors) expect(x).toBeGreaterThan(0);
  const failed = await page.$$eval('[data-testid=bench-table] td.bad', (tds) => tds.filter((td) => td.textContent === 'fail').map((td) => td.getAttribute('title')));
  expect(failed).toEqual([]);
  // speed-up = the fastest other contender, normgpu's CPU backend included (wall clock against
  // normgpu's wall clock), ÷ normgpu; green only above 1.
  const speedups = await page.$$eval('[data-testid=bench-table] tr', (trs) => trs.slice(1).map((tr) => {
    const sp = tr.querySelector('td[data-speedup]') as HTMLElement | null;
    return {
      times: Array.from(tr.querySelectorAll('td[data-id]')).map((td) => {
        const d = (td as HTMLElement).dataset;
        return { id: d.id!, ms: Number(d.ms), wallMs: Number(d.wallMs) };
      }),
      ratio: sp ? Number(sp.dataset.speedup) : null, vs: sp?.dataset.vs ?? null, cls: sp?.className ?? null, text: sp?.textContent ?? null,
    };
  }));
  expect(speedups).toHaveLength(14);
  for (const row of speedups) {
    const ours = row.times.find((t) => t.id === 'normgpu')!;
    expect(ours, 'normgpu timed').toBeDefined();
    expect(row.times.some((t) => t.id === 'normgpu-cpu'), 'CPU backend timed').toBe(true);
    const ratios = row.times.filter((t) => t.id !== 'normgpu').map((t) => ({ id: t.id, ratio: t.ms / (t.id === 'normgpu-cpu' ? ours.wallMs : ours.ms) }));
    const best = ratios.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    expect(row.ratio, JSON.stringify(row)).toBeCloseTo(best.ratio, 9);
    expect(row.vs).toBe(best.id);
    const shown = Number(best.ratio.toFixed(2));
    expect(row.cls, row.text!).toBe(shown > 1 ? 'good' : shown < 1 ? 'bad' : '');
  }
  await page.screenshot({ path: join(ARTIFACTS, 'demo-benchmark.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
}, 300_000);

interface DatasetReport {
  source: string; images: number; skipped: number; channels: number; resolution: number;
  mean: number[]; std: number[]; stdUnbiased: number[]; min: number[]; max: number[];
  progress: { images: number; total: number | null };
  pixels: [number, number, number, number, number][];
  cpuMaxRelDiff: number | null; cpuMaxImageDiff: number | null; snippet: string;
}

/** Float64 dataset statistics on [0, 1] by plain loops over RGBA images of width x height. */
function datasetReference(images: readonly Uint8Array[], width: number, height: number) {
  const plane = width * height;
  const count = images.length;
  const value = (n: number, c: number, i: number) => images[n][i * 4 + c] / 255;
  const values = count * plane;
  const mean: number[] = [];
  const m2: number[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let n = 0; n < count; n++) {
      for (let i = 0; i < plane; i++) {
        const v = value(n, c, i);
        s += v;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    const m = s / values;
    let q = 0;
    for (let n = 0; n < count; n++) for (let i = 0; i < plane; i++) q += (value(n, c, i) - m) ** 2;
    mean.push(m);
    m2.push(q);
    min.push(lo);
    max.push(hi);
  }
  const pixel = (c: number, y: number, x: number) => {
    const i = y * width + x;
    let s = 0;
    for (let n = 0; n < count; n++) s += value(n, c, i);
    const m = s / count;
    let q = 0;
    for (let n = 0; n < count; n++) q += (value(n, c, i) - m) ** 2;
    return { mean: m, std: Math.sqrt(q / count) };
  };
  return {
    mean, min, max, pixel,
    std: m2.map((q) => Math.sqrt(q / values)),
    stdUnbiased: m2.map((q) => Math.sqrt(q / (values - 1))),
  };
}

const relClose = (actual: number, want: number, what: string) => {
  expect(Math.abs(actual - want), `${what}: page ${actual}, reference ${want}`).toBeLessThanOrEqual(1e-5 * Math.abs(want));
};

/** The page's channel statistics equal the reference to 1e-5 relative. */
function expectStats(r: DatasetReport, want: ReturnType<typeof datasetReference>) {
  for (let c = 0; c < 3; c++) {
    relClose(r.mean[c], want.mean[c], `mean, channel ${c}`);
    relClose(r.std[c], want.std[c], `std (biased), channel ${c}`);
    relClose(r.stdUnbiased[c], want.stdUnbiased[c], `std (unbiased), channel ${c}`);
    relClose(r.min[c], want.min[c], `min, channel ${c}`);
    relClose(r.max[c], want.max[c], `max, channel ${c}`);
  }
}

test('the dataset tab computes the statistics of its generated sample set, equal to a float64 reference of the same images', async () => {
  const page = await open('/#dataset');
  await page.click('[data-testid=ds-generate]');
  await page.waitForFunction('window.demo.results.dataset', { timeout: 120_000 });
  const r = (await demoState(page)).results.dataset as unknown as DatasetReport;
  // The generated images' own bytes, as the page fed them to DatasetStats.
  const sample = await page.evaluate('window.demo.hooks.datasetImages()') as { width: number; height: number; count: number; rgba: string };
  expect([sample.count, sample.width, sample.height]).toEqual([48, 64, 64]);
  const rgba = new Uint8Array(Buffer.from(sample.rgba, 'base64'));
  expect(rgba.length).toBe(48 * 64 * 64 * 4);
  const image = 64 * 64 * 4;
  const want = datasetReference(Array.from({ length: 48 }, (_, n) => rgba.subarray(n * image, (n + 1) * image)), 64, 64);

  expect([r.images, r.skipped, r.channels, r.resolution]).toEqual([48, 0, 3, 64]);
  expect([r.progress.images, r.progress.total]).toEqual([48, 48]);
  const shownProgress = await page.$eval('[data-testid=ds-progress]', (e) => [(e as HTMLElement).dataset.done, (e as HTMLElement).dataset.total]);
  expect(shownProgress).toEqual(['48', '48']);
  expectStats(r, want);
  for (const [c, y, x, m, sd] of r.pixels) {
    const p = want.pixel(c, y, x);
    close(m, p.mean, `mean image at channel ${c} (${y}, ${x})`);
    close(sd, p.std, `std image at channel ${c} (${y}, ${x})`);
  }
  expect(r.cpuMaxRelDiff, 'channel statistics vs the CPU reference engine').not.toBeNull();
  expect(r.cpuMaxRelDiff!).toBeLessThanOrEqual(1e-5);
  expect(r.cpuMaxImageDiff!).toBeLessThanOrEqual(1e-5);
  // The table on the page shows the same figures.
  for (const stat of ['mean', 'std', 'stdUnbiased'] as const) {
    const shown = await page.$$eval(`[data-testid=ds-stats] td[data-stat=${stat}]`, (tds) => tds.map((td) => Number(td.getAttribute('data-value'))));
    expect(shown).toEqual(r[stat]);
  }

  // Both images are drawn: 64x64, mostly lit, with many colours.
  for (const id of ['ds-mean-image', 'ds-std-image']) {
    const drawn = await page.$eval(`[data-testid=${id}]`, (e) => {
      const c = e as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const colours = new Set<number>();
      let lit = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] + d[i + 1] + d[i + 2] > 0) lit++;
        colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
      return { width: c.width, height: c.height, lit, colours: colours.size };
    });
    expect([drawn.width, drawn.height], id).toEqual([64, 64]);
    expect(drawn.lit, id).toBeGreaterThan(64 * 64 * 0.9);
    expect(drawn.colours, id).toBeGreaterThan(100);
  }

  const caption = await page.$eval('[data-testid=ds-std-image] + figcaption', (e) => e.textContent ?? '');
  expect(caption).toMatch(/scaled so the largest is white \(max [0-9.e-]+\)/);

  // Copy as preset: through the clipboard, and through the visible fallback when it is refused.
  expect(r.snippet).toBe(`preprocess(engine, image, { mean: [${r.mean.map((v) => v.toFixed(4)).join(', ')}], std: [${r.std.map((v) => v.toFixed(4)).join(', ')}] })`);
  await page.evaluate(() => {
    const w = window as unknown as { copied?: string };
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: async (text: string) => { w.copied = text; } } });
  });
  await page.click('[data-testid=ds-copy]');
  await page.waitForFunction("document.querySelector('[data-testid=ds-copy-status]').dataset.state === 'copied'", { timeout: 60_000 });
  expect(await page.evaluate('window.copied')).toBe(r.snippet);
  await page.evaluate(() => {
    Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: async () => { throw new DOMException('Write permission denied.', 'NotAllowedError'); } } });
  });
  await page.click('[data-testid=ds-copy]');
  await page.waitForFunction("document.querySelector('[data-testid=ds-copy-status]').dataset.state === 'fallback'", { timeout: 60_000 });
  const fallback = await page.$eval('[data-testid=ds-snippet]', (e) => ({ hidden: (e as HTMLTextAreaElement).hidden, value: (e as HTMLTextAreaElement).value }));
  expect(fallback).toEqual({ hidden: false, value: r.snippet });

  await page.screenshot({ path: join(ARTIFACTS, 'demo-dataset.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
}, 240_000);

/** An 8-bit RGB PNG (no colour chunks, so the browser decodes the bytes as they are). */
function encodePng(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([...rgb(x, y), 255], (y * width + x) * 4);
  }
  return PNG.sync.write({ width, height, data }, { colorType: 2 });
}

test('a folder dropped on the dataset tab is walked recursively and its statistics match the reference', async () => {
  // 64x64 images (the transform is then the identity) and a 128x64 one (the center crop keeps x 32..95),
  // in nested folders beside a text file and a file that is no image.
  const pattern = (k: number) => (x: number, y: number): [number, number, number] => [(x * 4 + k * 50) % 256, (y * 3 + k * 20) % 256, (x * y + k * 90) % 256];
  const dir = mkdtempSync(join(tmpdir(), 'normgpu-dataset-'));
  try {
    mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
    writeFileSync(join(dir, 'a.png'), encodePng(64, 64, pattern(0)));
    writeFileSync(join(dir, 'sub', 'b.png'), encodePng(64, 64, pattern(1)));
    writeFileSync(join(dir, 'sub', 'deeper', 'wide.png'), encodePng(128, 64, pattern(2)));
    writeFileSync(join(dir, 'sub', 'broken.png'), 'not a png');
    writeFileSync(join(dir, 'notes.txt'), 'not an image');

    const page = await open('/#dataset');
    const box = (await (await page.$('#tab-dataset .dropzone'))!.boundingBox())!;
    const cdp = await page.createCDPSession();
    const at = { x: box.x + box.width / 2, y: box.y + box.height / 2, data: { items: [], files: [dir], dragOperationsMask: 1 } };
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, ...at });
    await page.waitForFunction('window.demo.results.dataset', { timeout: 120_000 });
    const r = (await demoState(page)).results.dataset as unknown as DatasetReport;
    expect(r.source).toBe('dropped: 4 images (1 other files ignored)');
    expect([r.images, r.skipped, r.resolution]).toEqual([3, 1, 64]);
    expect([r.progress.images, r.progress.total]).toEqual([3, 4]);

    // The 64x64 window from column `left` of an image, as RGBA.
    const crop = (left: number, f: (x: number, y: number) => [number, number, number]) => {
      const out = new Uint8Array(64 * 64 * 4);
      for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) out.set([...f(x + left, y), 255], (y * 64 + x) * 4);
      return out;
    };
    const want = datasetReference([crop(0, pattern(0)), crop(0, pattern(1)), crop(32, pattern(2))], 64, 64);
    expectStats(r, want);
    for (const [c, y, x, m, sd] of r.pixels) {
      const p = want.pixel(c, y, x);
      close(m, p.mean, `mean image at channel ${c} (${y}, ${x})`);
      close(sd, p.std, `std image at channel ${c} (${y}, ${x})`);
    }
    await page.close();
    expect(problems).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);

test('the interop tab runs preprocess → ONNX Runtime Web → GroupNorm on one device with no host round trip, equal to the CPU pipeline', async () => {
  const page = await open('/#interop');
  await page.click('[data-testid=interop-run]');
  await page.waitForFunction('window.demo.results.interop', { timeout: 120_000 });
  const r = (await demoState(page)).results.interop as { error?: string; gpuError: string | null; mapAsyncBeforeRead: number; maxError: number; shape: number[] };
  expect(r.error).toBeUndefined();
  expect(r.gpuError).toBeNull();
  expect(r.shape).toEqual([1, 8, 64, 64]);
  expect(r.mapAsyncBeforeRead).toBe(0);
  expect(r.maxError).toBeLessThanOrEqual(1e-5);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-interop.png') });
  await page.close();
  expect(problems).toEqual([]);
}, 180_000);

test('at 420 px wide the tab bar wraps: no tab is clipped and nothing scrolls sideways', async () => {
  const page = await open('/#benchmark');
  await page.setViewport({ width: 420, height: 800 });
  const bar = await page.$eval('nav.tabs', (nav) => ({
    scrollWidth: nav.scrollWidth,
    clientWidth: nav.clientWidth,
    clipped: Array.from(nav.querySelectorAll('button')).filter((b) => {
      const r = b.getBoundingClientRect();
      return r.left < 0 || r.right > document.documentElement.clientWidth;
    }).map((b) => b.textContent),
  }));
  expect(bar.scrollWidth, 'tab bar scrollWidth vs clientWidth').toBeLessThanOrEqual(bar.clientWidth);
  expect(bar.clipped).toEqual([]);
  const page420 = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
  expect(page420.scrollWidth, 'benchmark tab scrollWidth vs clientWidth').toBeLessThanOrEqual(page420.clientWidth);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-420px.png') });
  await page.close();
  expect(problems).toEqual([]);
});

test('without WebGPU the page runs on the CPU backend and says so', async () => {
  const page = await open('/?backend=cpu');
  const state = await demoState(page);
  expect(state.backend).toBe('cpu');
  const notice = await page.$eval('[data-testid=notice]', (e) => e.textContent ?? '');
  expect(notice).toContain('CPU backend');
  const r = state.results.playground as unknown as PlaygroundReport;
  const want = expected('imagenet');
  for (let c = 0; c < 3; c++) close(r.outMean[c], want.outMean[c], `CPU backend output mean, channel ${c}`);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-cpu-fallback.png') });
  await page.close();
  expect(problems).toEqual([]);
});

test('in a browser with no WebGPU adapter the page falls back to the CPU backend with a notice', async () => {
  // Chromium without the WebGPU flags: navigator.gpu exists but offers no adapter here.
  const userDataDir = mkdtempSync(join(tmpdir(), 'normgpu-chromium-nogpu-'));
  const browser = await puppeteer.launch({
    executablePath: findChromium(), headless: true, userDataDir,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => problems.push(`exception: ${e instanceof Error ? e.message : String(e)}`));
    await page.goto(url);
    await page.waitForFunction('window.demo && (window.demo.ready || window.demo.error)', { timeout: 60_000 });
    const state = await demoState(page);
    expect(state.backend).toBe('cpu');
    const notice = await page.$eval('[data-testid=notice]', (e) => e.textContent ?? '');
    expect(notice).toMatch(/WebGPU/);
    expect(notice).toContain('CPU backend');
    await page.screenshot({ path: join(ARTIFACTS, 'demo-no-webgpu.png') });
    expect(problems).toEqual([]);
  } finally {
    await browser.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
});
