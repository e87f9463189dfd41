/**
 * The README's examples must run as written: this extracts every ```js block, points the
 * `normgpu` import at the built package, runs each and checks what it prints.
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';

async function runBlock(code: string): Promise<unknown[][]> {
  const dist = pathToFileURL(resolve(__dirname, '../dist/normgpu.js')).href;
  const file = join(mkdtempSync(join(tmpdir(), 'normgpu-readme-')), 'tour.mjs');
  writeFileSync(file, code.replace("from 'normgpu'", `from '${dist}'`));
  const logs: unknown[][] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => { logs.push(args); };
  try {
    await import(/* @vite-ignore */ pathToFileURL(file).href);
  } finally {
    console.log = log;
  }
  return logs;
}

const readme = readFileSync(resolve(__dirname, '../README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test('README has its five ```js examples', () => {
  expect(blocks.length).toBe(5);
});

test('README float16 and fused epilogues example runs and prints what it says', async () => {
  const logs = await runBlock(blocks[4]);
  expect(logs[0]).toEqual(['float16', 'float16', 1]);
  expect(logs[1]).toEqual(['float16', 4096]);
});

test('README API tour runs and prints what it says', async () => {
  const logs = await runBlock(blocks[0]);
  expect(logs[0][0]).toBe('webgpu');
  expect(logs.at(-1)).toEqual([true, 'GROUPS_NOT_DIVISIBLE']);
});

test('README preprocessing, dataset statistics and scalers example runs and prints what it says', async () => {
  const logs = await runBlock(blocks[1]);
  expect(logs[0][0]).toEqual([1, 3, 224, 224]);
  const [mean, z, m] = logs[1] as number[][];
  expect(mean).toEqual([2, 30]);
  // scikit-learn: StandardScaler().fit_transform / MinMaxScaler((-1, 1)).fit_transform of the same rows.
  const sd = [Math.sqrt(2 / 3), Math.sqrt(1400 / 3)];
  const zExpected = [[1, 10], [2, 20], [3, 60]].flatMap((r) => r.map((v, j) => (v - mean[j]) / sd[j]));
  z.forEach((v, i) => expect(v).toBeCloseTo(zExpected[i], 5));
  const mExpected = [-1, -1, 0, -0.6, 1, 1];
  m.forEach((v, i) => expect(v).toBeCloseTo(mExpected[i], 6));
});

test('README modules example: SGD steps of a BatchNorm2d lower the loss, and its state dict has PyTorch\'s five keys', async () => {
  const logs = await runBlock(blocks[2]);
  const losses = logs.slice(0, 5).map((l) => l[1] as number);
  expect(logs.slice(0, 5).map((l) => l[0])).toEqual([0, 1, 2, 3, 4]);
  losses.slice(1).forEach((loss, i) => expect(loss).toBeLessThan(losses[i]));
  expect(logs.at(-1)).toEqual([5, 5]);
});

test('README submission, failures and memory example runs and prints what it says', async () => {
  const logs = await runBlock(blocks[3]);
  expect(logs[0]).toEqual([6144, 2]);
  expect(logs[1]).toEqual([6144]);
  expect(logs.at(-1)).toEqual(['DISPOSED_ENGINE']);
});
