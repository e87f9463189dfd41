/**
 * End-to-end test of the demo page (issue 4) in headless Chromium: the built demo loads with
 * no console errors and states its backend and adapter; the playground normalizes the bundled
 * sample and the values it reports match a float64 reference computed here from the PNG; the
 * layer explorer agrees with the CPU backend; a short benchmark run completes and renders its
 * chart; `?backend=cpu` shows the fallback notice. Screenshots go to test-artifacts/.
 * Nothing here depends on a timing.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { decodePng } from './demo-png';
import puppeteer from 'puppeteer-core';
import { findChromium, launchChromium, REPO_ROOT, type LaunchedBrowser } from './harness';

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const CONFIG = join(REPO_ROOT, 'demo', 'vite.config.ts');

let outDir = '';
let server: PreviewServer | undefined;
let url = '';
let chromium: LaunchedBrowser | undefined;
const problems: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  outDir = mkdtempSync(join(tmpdir(), 'normgpu-demo-'));
  await build({ configFile: CONFIG, logLevel: 'warn', build: { outDir, emptyOutDir: true, sourcemap: false } });
  server = await preview({ configFile: CONFIG, logLevel: 'warn', build: { outDir }, preview: { port: 0, host: '127.0.0.1', open: false } });
  url = server.resolvedUrls?.local[0] ?? '';
  if (!url) throw new Error('vite preview gave no URL');
  chromium = await launchChromium();
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

beforeEach(() => {
  problems.length = 0;
});

/** A page that records every console error, uncaught exception and failed request. */
async function open(path: string): Promise<Page> {
  const page = await chromium!.browser.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error on ${path}: ${m.text()}`);
    if (m.type() === 'warn') console.warn(`[page warn] ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`exception on ${path}: ${e instanceof Error ? e.message : String(e)}`));
  page.on('requestfailed', (r) => problems.push(`request failed on ${path}: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} on ${path}: ${r.url()}`);
  });
  await page.goto(`${url}${path}`);
  await page.waitForFunction('window.demo && (window.demo.ready || window.demo.error)', { timeout: 60_000 });
  const error = await page.evaluate('window.demo.error');
  expect(error, 'demo start-up error').toBeUndefined();
  return page;
}

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
  const png = decodePng(readFileSync(join(REPO_ROOT, 'demo', 'assets', 'sample.png')));
  const { width, height, channels: k } = png;
  const plane = width * height;
  const byte = (c: number, i: number) => png.data[i * k + c];
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
  expect(r.contenders.map((c) => c.id)).toEqual(['normgpu', 'normgpu-cpu', 'tfjs', 'ort', 'ort-nchw']);
  expect(r.contenders.filter((c) => c.error)).toEqual([]);
  const rows = await page.$$eval('[data-testid=bench-table] tr', (trs) => trs.length);
  expect(rows).toBe(1 + 14);
  const bars = await page.$$eval('[data-testid=bench-chart] svg rect', (rs) => rs.length);
  expect(bars).toBeGreaterThan(14);
  const failed = await page.$$eval('[data-testid=bench-table] td.bad', (tds) => tds.filter((td) => td.textContent === 'fail').map((td) => td.getAttribute('title')));
  expect(failed).toEqual([]);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-benchmark.png'), fullPage: true });
  await page.close();
  expect(problems).toEqual([]);
}, 300_000);

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
