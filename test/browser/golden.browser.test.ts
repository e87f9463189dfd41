/**
 * The golden accuracy suite on WebGPU inside headless Chromium: the built bundle
 * (`dist/normgpu.js`, `dist/accuracy.js`; `npm test` builds first) runs every golden case on
 * the browser's adapter, and every case the engine supports must be within tolerance.
 * Without Chromium this test fails; it never skips.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { AccuracyReport, GoldenManifest } from '../../src/accuracy/runner';
import { forwardPageProblems, launchChromium, REPO_ROOT, serveStatic, type LaunchedBrowser } from './harness';

const DIST = join(REPO_ROOT, 'dist');
const GOLDEN = join(REPO_ROOT, 'test', 'golden');

interface PageResult {
  report: AccuracyReport;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string } | null;
}

// Setup happens inside the test, not in beforeAll: a missing browser must show up as a failed
// test, where a failing beforeAll reports the test itself as skipped.
test('golden suite passes on WebGPU in headless Chromium', async () => {
  for (const file of ['normgpu.js', 'accuracy.js']) {
    if (!existsSync(join(DIST, file))) throw new Error(`dist/${file} is missing: run \`npm run build\` first (npm test does)`);
  }
  const server = await serveStatic({ '/dist/': DIST, '/golden/': GOLDEN, '/': join(REPO_ROOT, 'test', 'browser') });
  let chromium: LaunchedBrowser | undefined;
  let json: unknown;
  try {
    chromium = await launchChromium();
    const page = await chromium.browser.newPage();
    forwardPageProblems(page);
    await page.goto(`${server.url}/page.html`);
    await page.waitForFunction('window.harnessReady === true', { timeout: 30_000 });
    // A string, not a function: vitest's transform could add helpers the page does not have.
    json = await page.evaluate('window.runGolden()');
  } finally {
    await chromium?.close();
    await server.close();
  }
  const { report, adapterInfo } = JSON.parse(json as string) as PageResult;

  const info = adapterInfo ?? { vendor: '', architecture: '', device: '', description: '' };
  console.log(
    `[webgpu adapter] vendor=${info.vendor || '?'} architecture=${info.architecture || '?'}` +
      (info.device ? ` device=${info.device}` : '') +
      (info.description ? ` description=${info.description}` : ''),
  );
  const passed = report.cases.filter((r) => r.pass === true).length;
  const unsupported = report.cases.filter((r) => r.pass === null);
  const failures = report.cases
    .filter((r) => r.pass === false)
    .map((r) => `${r.id} (${r.op} ${r.layout ?? ''}): scaled error ${r.maxScaledError ?? 'n/a'}, tolerance ${r.tolerance}; ${r.reason ?? ''}`);
  console.log(
    `[golden/chromium] ${passed} passed, ${failures.length} failed, ${unsupported.length} unsupported ` +
      `(${[...new Set(unsupported.map((r) => r.op))].join(', ')}) of ${report.cases.length}; adapter: ${report.adapter}`,
  );

  expect(report.backend).toBe('webgpu');
  const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as GoldenManifest;
  expect(report.cases.map((r) => r.id)).toEqual(manifest.cases.map((c) => c.id));
  expect(passed).toBeGreaterThan(0);
  expect(failures, failures.join('\n')).toEqual([]);
});
