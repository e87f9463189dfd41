/**
 * The README's API tour must run as written: this extracts its first ```js block, points the
 * `normgpu` import at the built package, and runs it on the CPU and WebGPU backends.
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';

test('README API tour runs and prints what it says', async () => {
  const readme = readFileSync(resolve(__dirname, '../README.md'), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code, 'README has a ```js example').toBeTruthy();
  const dist = pathToFileURL(resolve(__dirname, '../dist/normgpu.js')).href;
  const file = join(mkdtempSync(join(tmpdir(), 'normgpu-readme-')), 'tour.mjs');
  writeFileSync(file, code!.replace("from 'normgpu'", `from '${dist}'`));
  const logs: unknown[][] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => { logs.push(args); };
  try {
    await import(/* @vite-ignore */ pathToFileURL(file).href);
  } finally {
    console.log = log;
  }
  expect(logs[0][0]).toBe('webgpu');
  expect(logs.at(-1)).toEqual([true, 'GROUPS_NOT_DIVISIBLE']);
});
