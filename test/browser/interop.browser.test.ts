/**
 * normgpu with ONNX Runtime Web (both of its WebGPU builds) and TensorFlow.js's WebGPU backend
 * on one shared GPUDevice, in headless Chromium, in both directions of device ownership. Each
 * pipeline passes GPU buffers between the libraries and must match the all-CPU computation
 * (normgpu's CPU backend, the peer's op in plain JS) with no mapAsync before its final read.
 * The page (interop-page.ts) is bundled here with Vite from src/; the peers load from
 * node_modules through an import map. Without Chromium this test fails; it never skips.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { forwardPageProblems, launchChromium, REPO_ROOT, serveStatic, type LaunchedBrowser, type StaticServer } from './harness';
import type { Owner, PageReport } from './interop-page';

const NODE_MODULES = join(REPO_ROOT, 'node_modules');

/** The page: an import map to the peers' ES builds in node_modules, and the bundled interop-page.ts. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>normgpu interop</title>
<link rel="icon" href="data:,">
<script type="importmap">
${JSON.stringify({
  imports: {
    'onnxruntime-web': '/ort/ort.bundle.min.mjs',
    'onnxruntime-web/webgpu': '/ort/ort.webgpu.bundle.min.mjs',
    '@tensorflow/tfjs-core': '/tfjs-core/tf-core.fesm.js',
    '@tensorflow/tfjs-backend-webgpu': '/tfjs-webgpu/tf-backend-webgpu.fesm.js',
  },
})}
</script>
<script type="module" src="/interop-page.js"></script>
</head>
<body></body>
</html>
`;

/** The pages to run, each with the window.interop call it makes. */
const PAGES = {
  'ORT JSEP, normgpu-made device': "window.interop.ort('jsep', ['normgpu'])",
  'ORT JSEP, ORT-made device': "window.interop.ort('jsep', ['peer'])",
  'ORT native, both ways': "window.interop.ort('native', ['normgpu', 'peer'])",
  'TF.js, normgpu-made device': "window.interop.tfjs('normgpu')",
  'TF.js, TF.js-made device': "window.interop.tfjs('peer')",
} as const;
type PageName = keyof typeof PAGES;
const reports = new Map<PageName, Promise<PageReport>>();
const reportOf = (name: PageName) => reports.get(name)!;

let outDir = '';
let server: StaticServer | undefined;
let chromium: LaunchedBrowser | undefined;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'normgpu-interop-'));
  await build({
    configFile: false,
    root: REPO_ROOT,
    publicDir: false,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      sourcemap: false,
      lib: { entry: join(REPO_ROOT, 'test', 'browser', 'interop-page.ts'), formats: ['es'], fileName: () => 'interop-page.js' },
      rollupOptions: { external: [/^onnxruntime-web/, /^@tensorflow\//] },
    },
  });
  writeFileSync(join(outDir, 'index.html'), PAGE);
  server = await serveStatic({
    '/ort/': join(NODE_MODULES, 'onnxruntime-web', 'dist'),
    '/tfjs-core/': join(NODE_MODULES, '@tensorflow', 'tfjs-core', 'dist'),
    '/tfjs-webgpu/': join(NODE_MODULES, '@tensorflow', 'tfjs-backend-webgpu', 'dist'),
    '/': outDir,
  });
  chromium = await launchChromium();
  // All pages at once: each is mostly ORT's single-threaded start-up, so they overlap well.
  for (const [name, call] of Object.entries(PAGES) as [PageName, string][]) {
    const report = run(name, call);
    report.catch(() => {}); // its test awaits it and reports the failure
    reports.set(name, report);
  }
});

afterAll(async () => {
  await chromium?.close();
  await server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** Run `call` (a window.interop method) in a fresh page: each peer keeps the device it started on. */
async function run(label: string, call: string): Promise<PageReport> {
  const page = await chromium!.browser.newPage();
  forwardPageProblems(page);
  try {
    await page.goto(`${server!.url}/index.html`);
    await page.waitForFunction('window.interop !== undefined');
    const report = (await page.evaluate(call)) as PageReport;
    for (const o of report.outcomes) {
      console.log(`[interop] ${label}, ${o.owner}'s device: same device ${o.sameDevice}, mapAsync before read ${o.mapAsyncBeforeRead}, ` +
        `error ${o.error.toExponential(2)}${o.gpuError ? `, GPU error: ${o.gpuError}` : ''}`);
    }
    for (const [fact, value] of Object.entries(report.facts)) console.log(`[interop] ${label}: ${fact}: ${String(value)}`);
    return report;
  } finally {
    await page.close();
  }
}

/** Every pipeline ran on one device, matched the CPU and mapped nothing before its read. */
function expectShared(report: PageReport, owners: Owner[]): void {
  expect(report.outcomes.map((o) => o.owner)).toEqual(owners);
  for (const o of report.outcomes) {
    expect(o.gpuError, o.owner).toBeNull();
    expect(o.sameDevice, o.owner).not.toBe(false);
    expect(o.mapAsyncBeforeRead, o.owner).toBe(0);
    expect(o.error, o.owner).toBeLessThanOrEqual(1e-5);
  }
}

/** fromOrt took the ORT output over, and refused one that ORT returned on the CPU. */
function expectFromOrt(report: PageReport): void {
  expect(report.facts['ORT output disposed with its fromOrt tensor']).toBe(true);
  expect(report.facts['fromOrt of an output on the CPU']).toBe('INVALID_ARGUMENT');
}

// The facts pinned below are ORT 1.30's and TF.js 4.22's behaviour that the README's interop
// section describes: when a peer changes it, update the README with the expectation.

test('ORT JSEP (default import) on normgpu\'s device: preprocess → session → layerNorm', async () => {
  const report = await reportOf('ORT JSEP, normgpu-made device');
  expectShared(report, ['normgpu']);
  expectFromOrt(report);
  expect(report.facts['given device alive after its last session is released']).toBe(true);
  expect(report.facts['ortWebGpuProvider for a second device (JSEP started)']).toBe('INVALID_ARGUMENT');
});

test('ORT JSEP (default import) on its own device, given to normgpu', async () => {
  const report = await reportOf('ORT JSEP, ORT-made device');
  expectShared(report, ['peer']);
  expectFromOrt(report);
  expect(report.facts['EP option device used (JSEP)']).toBe(false);
  expect(report.facts['own device alive after its last session is released']).toBe(true);
});

test('ORT native EP (onnxruntime-web/webgpu), both directions', async () => {
  const report = await reportOf('ORT native, both ways');
  expectShared(report, ['normgpu', 'peer']);
  expectFromOrt(report);
  expect(report.facts['given device alive after its last session is released']).toBe(true);
  // ORT destroys a device it made once its last session is released: normgpu's engine on it is lost.
  expect(report.facts['own device alive after its last session is released']).toBe(false);
});

for (const owner of ['normgpu', 'peer'] as const) {
  test(`TF.js on ${owner === 'normgpu' ? 'normgpu\'s device' : 'its own device, given to normgpu'}: tf ops → groupNorm → tf ops`, async () => {
    const report = await reportOf(owner === 'normgpu' ? 'TF.js, normgpu-made device' : 'TF.js, TF.js-made device');
    expectShared(report, [owner]);
    expect(report.facts).toEqual({
      'fromTfjs copy made in tf.tidy intact': true,
      'TF.js tensors left after disposing': 0,
      'fromTfjs of host-resident values': true,
      'TF.js tensors left after engine.tidy': 0,
      'fromTfjs with a shape of another size': 'DATA_LENGTH_MISMATCH',
      'fromTfjs of an int32 tensor': 'INVALID_DATA',
      'fromTfjs of a disposed tensor': 'DISPOSED_TENSOR',
    });
  });
}
