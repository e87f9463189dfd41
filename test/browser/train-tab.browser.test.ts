/**
 * End-to-end test of the demo's "Train vs eval" tab in headless Chromium, on WebGPU and on the
 * CPU backend: the drift run's batch statistics and the running statistics of its two
 * BatchNorm2d modules (momentum 0.1 and null) equal a float64 reference computed here from the
 * same seeded batches (demo/src/drift.ts), for both layouts; train mode gives unit statistics
 * and eval mode differs from it; the gradient check passes for every op it offers. The page
 * may log no error. Screenshots go to test-artifacts/. Nothing here depends on a timing.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'puppeteer';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { driftBatch, type Drift } from '../../demo/src/drift';
import type { GradReport, TrainReport } from '../../demo/src/train-tab';
import { launchChromium, openDemo, REPO_ROOT, serveDemo, type DemoServer, type LaunchedBrowser } from './harness';

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

let demo: DemoServer | undefined;
let chromium: LaunchedBrowser | undefined;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  demo = await serveDemo();
  chromium = await launchChromium();
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await demo?.close();
});

/** The page at `path`, started; `problems` collects its console errors, exceptions and failed requests. */
const open = (path: string, problems: string[]): Promise<Page> => openDemo(chromium!.browser, demo!.url, path, problems);

async function result<T>(page: Page, key: string): Promise<T> {
  await page.waitForFunction(`window.demo.results[${JSON.stringify(key)}]`, { timeout: 300_000 });
  return JSON.parse(await page.evaluate(`JSON.stringify(window.demo.results[${JSON.stringify(key)}])`) as string) as T;
}

const scaled = (a: number, e: number) => Math.abs(a - e) / (1 + Math.abs(e));

/** The float64 statistics a run of `r`'s parameters must report: regenerated from the same seeded batches. */
function reference(r: TrainReport) {
  const shape = [16, 2, 8, 8] as const;
  const c = shape[1];
  const plane = shape[2] * shape[3];
  const count = shape[0] * plane;
  const ema = { mean: [0, 0], var: [1, 1] };
  const cum = { mean: [0, 0], var: [1, 1] };
  const out = { batchMean: [] as number[][], batchVar: [] as number[][], ema: { mean: [] as number[][], var: [] as number[][] }, cum: { mean: [] as number[][], var: [] as number[][] } };
  for (let t = 0; t < r.steps; t++) {
    const x = driftBatch(r.drift as Drift, t, r.steps, shape, r.seed);
    const mean = [0, 0];
    const m2 = [0, 0];
    for (let i = 0; i < x.length; i++) mean[Math.floor(i / plane) % c] += x[i] / count;
    for (let i = 0; i < x.length; i++) m2[Math.floor(i / plane) % c] += (x[i] - mean[Math.floor(i / plane) % c]) ** 2;
    const unbiased = m2.map((v) => v / (count - 1));
    for (const [s, f] of [[ema, 0.1], [cum, 1 / (t + 1)]] as const) {
      s.mean = s.mean.map((v, k) => (1 - f) * v + f * mean[k]);
      s.var = s.var.map((v, k) => (1 - f) * v + f * unbiased[k]);
    }
    out.batchMean.push(mean);
    out.batchVar.push(unbiased);
    out.ema.mean.push(ema.mean);
    out.ema.var.push(ema.var);
    out.cum.mean.push(cum.mean);
    out.cum.var.push(cum.var);
  }
  return out;
}

function worst(actual: number[][], expected: number[][]): number {
  expect(actual.length).toBe(expected.length);
  return Math.max(...actual.flatMap((row, t) => row.map((v, k) => scaled(v, expected[t][k]))));
}

function checkRun(r: TrainReport, want: { steps: number; drift: string; layout: string; backend: string }): void {
  expect({ steps: r.steps, drift: r.drift, layout: r.layout, backend: r.backend }).toEqual(want);
  const ref = reference(r);
  expect(worst(r.batchMean, ref.batchMean), 'batch means').toBeLessThanOrEqual(1e-5);
  expect(worst(r.batchVar, ref.batchVar), 'batch variances').toBeLessThanOrEqual(1e-5);
  expect(worst(r.ema.mean, ref.ema.mean), 'running_mean, momentum 0.1').toBeLessThanOrEqual(1e-5);
  expect(worst(r.ema.var, ref.ema.var), 'running_var, momentum 0.1').toBeLessThanOrEqual(1e-5);
  expect(worst(r.cumulative.mean, ref.cum.mean), 'running_mean, cumulative').toBeLessThanOrEqual(1e-5);
  expect(worst(r.cumulative.var, ref.cum.var), 'running_var, cumulative').toBeLessThanOrEqual(1e-5);
  expect(r.numBatchesTracked).toEqual([r.steps, r.steps]);
  const [train, emaEval, cumEval] = r.modes;
  for (let k = 0; k < 2; k++) {
    expect(Math.abs(train.mean[k]), `train-mode mean of channel ${k}`).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(train.std[k] - 1), `train-mode std of channel ${k}`).toBeLessThanOrEqual(1e-3);
  }
  expect(train.maxDiffVsTrain).toBe(0);
  expect(emaEval.maxDiffVsTrain).toBeGreaterThan(0);
  expect(cumEval.maxDiffVsTrain).toBeGreaterThan(0);
}

test('the drift run matches a float64 reference for both momenta and layouts; train and eval modes differ', async () => {
  const problems: string[] = [];
  const page = await open('/#train', problems);
  // The tab runs once when shown: linear drift, 30 batches, channels-first.
  const started = Date.now();
  const first = await result<TrainReport>(page, 'train');
  console.log(`drift run of 30 batches: ${((Date.now() - started) / 1000).toFixed(1)} s (informational)`);
  const backend = first.backend;
  expect(backend).toBe('webgpu');
  checkRun(first, { steps: 30, drift: 'linear', layout: 'channels-first', backend });
  // Under a linear drift the cumulative average lags: its eval output is off-centre, the EMA's much less.
  const [, emaEval, cumEval] = first.modes;
  expect(Math.abs(cumEval.mean[0])).toBeGreaterThan(2 * Math.abs(emaEval.mean[0]));
  expect(await page.$$eval('[data-testid^=tr-chart-] canvas', (cs) => cs.length)).toBe(4);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-train.png'), fullPage: true });

  await page.evaluate('window.demo.results.train = undefined');
  await page.select('[data-testid=tr-drift]', 'jump');
  await page.select('[data-testid=tr-layout]', 'channels-last');
  await page.$eval('[data-testid=tr-steps]', (e) => { (e as HTMLInputElement).value = '12'; });
  await page.click('[data-testid=tr-run]');
  checkRun(await result<TrainReport>(page, 'train'), { steps: 12, drift: 'jump', layout: 'channels-last', backend });
  expect(problems).toEqual([]);
  await page.close();
}, 600_000);

/** Run the gradient check for every op of the select in `layouts`; every row must pass. */
async function checkGradients(page: Page, layouts: readonly string[], backend: string): Promise<number> {
  const ops = await page.$$eval('[data-testid=gc-op] option', (os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(ops.length).toBe(6);
  let worstScaled = 0;
  for (const layout of layouts) {
    for (const op of ops) {
      await page.evaluate('window.demo.results.gradcheck = undefined');
      await page.select('[data-testid=gc-op]', op);
      await page.select('[data-testid=gc-layout]', layout);
      await page.click('[data-testid=gc-run]');
      const r = await result<GradReport>(page, 'gradcheck');
      expect({ op: r.op, layout: r.layout, backend: r.backend }).toEqual({ op, layout, backend });
      expect(r.rows.map((row) => row.name)).toEqual(op === 'rms' ? ['dx', 'dweight'] : ['dx', 'dweight', 'dbias']);
      for (const row of r.rows) {
        expect(row.pass, `${op} ${layout} ${row.name}: ${JSON.stringify(row)}`).toBe(true);
        expect(row.maxScaled).toBeLessThanOrEqual(r.tolerance);
        if (backend === 'webgpu') expect(row.vsCpu!).toBeLessThanOrEqual(1e-5);
        else expect(row.vsCpu).toBeNull();
        worstScaled = Math.max(worstScaled, row.maxScaled);
      }
      const verdicts = await page.$$eval('[data-testid=gc-table] td.ok, [data-testid=gc-table] td.err', (tds) => tds.map((t) => t.textContent));
      expect(verdicts.every((v) => v === 'pass')).toBe(true);
    }
  }
  return worstScaled;
}

test('the gradient check passes for every op, both layouts, on WebGPU', async () => {
  const problems: string[] = [];
  const page = await open('/#train', problems);
  await result<TrainReport>(page, 'train');
  const worstScaled = await checkGradients(page, ['channels-first', 'channels-last'], 'webgpu');
  console.log(`gradient check, worst finite-difference scaled error: ${worstScaled.toExponential(2)}`);
  await page.screenshot({ path: join(ARTIFACTS, 'demo-train-gradcheck.png'), fullPage: true });
  expect(problems).toEqual([]);
  await page.close();
}, 600_000);

test('the tab works on the CPU backend (?backend=cpu) too', async () => {
  const problems: string[] = [];
  const page = await open('/?backend=cpu#train', problems);
  checkRun(await result<TrainReport>(page, 'train'), { steps: 30, drift: 'linear', layout: 'channels-first', backend: 'cpu' });
  await checkGradients(page, ['channels-last'], 'cpu');
  expect(problems).toEqual([]);
  await page.close();
}, 600_000);
