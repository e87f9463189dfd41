/**
 * The built `normgpu` command (package.json `bin` → dist/cli.js, made by `npm run build`, which
 * `npm test` runs first), as a user runs it: a child process on a folder of PNGs and on an IDX
 * file, its exit codes, and its JSON against the float64 statistics computed here; then bad
 * files and bad flags, each of which must end in one `normgpu: ` line, never a stack trace.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { encodePng } from '../src/cli/images';
import { REPO_ROOT } from './browser/harness';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const run = promisify(execFile);
let dir = '';

/** Runs the command; resolves with its exit code and output instead of rejecting on failure. */
async function normgpu(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: dir, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const f = e as { code?: number; stdout?: string; stderr?: string };
    return { code: f.code ?? -1, stdout: f.stdout ?? '', stderr: f.stderr ?? '' };
  }
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` first (npm test does)');
  dir = mkdtempSync(join(tmpdir(), 'normgpu-cli-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('stats on a folder of PNGs: exit 0, per-channel mean/std as float64, mean and std images', async () => {
  mkdirSync(join(dir, 'pngs'));
  const [w, h, n] = [9, 7, 6];
  const sum = [0, 0, 0];
  const values: number[][] = [[], [], []];
  for (let i = 0; i < n; i++) {
    const chw = new Float32Array(3 * w * h);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < w * h; p++) {
        const v = ((p * (c + 3) + i * 41) % 256) / 255;
        chw[c * w * h + p] = v;
        // What the statistics see: the decoded byte / 255 in float32.
        const seen = Math.fround(Math.round(v * 255) / 255);
        sum[c] += seen;
        values[c].push(seen);
      }
    }
    writeFileSync(join(dir, 'pngs', `${i}.png`), await encodePng(chw, 3, h, w));
  }
  const r = await normgpu(['stats', 'pngs', '--json', 'pngs.json', '--out', 'out']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain('images: 6, 3 channel(s), 7x9');
  const json = JSON.parse(readFileSync(join(dir, 'pngs.json'), 'utf8')) as { images: number; mean: number[]; std: number[] };
  expect(json.images).toBe(n);
  for (let c = 0; c < 3; c++) {
    const mean = sum[c] / values[c].length;
    const std = Math.sqrt(values[c].reduce((a, v) => a + (v - mean) ** 2, 0) / values[c].length);
    expect(Math.abs(json.mean[c] - mean) / mean).toBeLessThan(1e-6);
    expect(Math.abs(json.std[c] - std) / std).toBeLessThan(1e-6);
  }
  for (const f of ['mean.png', 'std.png']) expect(readFileSync(join(dir, 'out', f)).subarray(1, 4).toString()).toBe('PNG');
});

test('stats on an IDX file; usage errors and a missing input exit 2 with a message', async () => {
  const header = new DataView(new ArrayBuffer(16));
  [0x00000803, 4, 3, 2].forEach((v, i) => header.setUint32(i * 4, v, false));
  writeFileSync(join(dir, 'x-idx3-ubyte'), new Uint8Array([...new Uint8Array(header.buffer), ...Array.from({ length: 24 }, (_, k) => k * 10)]));
  const ok = await normgpu(['stats', 'x-idx3-ubyte', '--quiet', '--out', 'idx']);
  expect(ok.code, ok.stderr).toBe(0);
  expect(ok.stdout).toContain('images: 4, 1 channel(s), 3x2');

  const usage = await normgpu(['stats', 'pngs', '--size', 'zero']);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toMatch(/--size needs an integer from 1 to 4096, got 'zero'/);
  expect((await normgpu(['frobnicate'])).code).toBe(2);
  const missing = await normgpu(['stats', 'no-such-folder']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/no such file/);
});

/** `n` PNGs of w x h in `folder` (under the test dir), named 0.png, 1.png, ... */
async function writePngs(folder: string, n: number, w: number, h: number): Promise<void> {
  mkdirSync(join(dir, folder), { recursive: true });
  for (let i = 0; i < n; i++) {
    const chw = Float32Array.from({ length: 3 * w * h }, (_, k) => ((k * 7 + i * 53) % 256) / 255);
    writeFileSync(join(dir, folder, `${i}.png`), await encodePng(chw, 3, h, w));
  }
}

/** A PNG cut off in its image data. */
async function truncatedPng(): Promise<Uint8Array> {
  const png = await encodePng(new Float32Array(3 * 8 * 8).fill(0.5), 3, 8, 8);
  return png.subarray(0, png.length - 20);
}

/** JPEG's start-of-image marker, then junk: jpeg-js fails on it. */
const GARBAGE_JPEG = new Uint8Array([0xff, 0xd8, ...Buffer.from('not really a jpeg')]);

/** A failure as the CLI must report it: exit `code`, stderr ending in one line `message`, no stack frame. */
function expectFailure(r: { code: number; stderr: string }, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(message);
  expect(r.stderr).not.toContain('    at ');
}

// The bad-input runs below use the CPU backend: what they check is the command, not the GPU.

test('a truncated PNG in a later batch stops the run: exit 1, the file and the reason, no stack trace', async () => {
  await writePngs('trunc', 3, 6, 5);
  writeFileSync(join(dir, 'trunc', 'z.png'), await truncatedPng());
  // --batch 1: the bad file is decoded ahead, while the batch before it is reduced.
  const r = await normgpu(['stats', 'trunc', '--batch', '1', '--backend', 'cpu', '--out', 'trunc-out']);
  expectFailure(r, 1, /^normgpu: cannot decode trunc\/z\.png: truncated PNG data/);
  expect(r.stderr).toContain('3/4 images');
});

test('a garbage .jpg stops the run naming it: JPEG junk and a file that is no image at all', async () => {
  await writePngs('garbage', 2, 6, 5);
  writeFileSync(join(dir, 'garbage', 'x.jpg'), GARBAGE_JPEG);
  expectFailure(await normgpu(['stats', 'garbage', '--backend', 'cpu', '--quiet']), 1, /^normgpu: cannot decode garbage\/x\.jpg: unknown JPEG marker/);
  writeFileSync(join(dir, 'garbage', 'x.jpg'), 'hello');
  expectFailure(await normgpu(['stats', 'garbage', '--backend', 'cpu', '--quiet']), 1, /^normgpu: cannot decode garbage\/x\.jpg: not a PNG or JPEG file$/);
});

test('--skip-bad: the good files give the same statistics as alone; the bad ones are listed on stderr and in the JSON', async () => {
  await writePngs('good', 4, 9, 7);
  await writePngs('mixed', 4, 9, 7);
  writeFileSync(join(dir, 'mixed', '1a.png'), await truncatedPng());
  writeFileSync(join(dir, 'mixed', '2a.jpg'), GARBAGE_JPEG);
  // At native size an image of another size cannot join the others.
  await writePngs(join('mixed', 'odd'), 1, 5, 5);
  const good = await normgpu(['stats', 'good', '--backend', 'cpu', '--quiet', '--out', 'good-out', '--json', 'good.json']);
  expect(good.code, good.stderr).toBe(0);
  const mixed = await normgpu(['stats', 'mixed', '--skip-bad', '--backend', 'cpu', '--quiet', '--out', 'mixed-out', '--json', 'mixed.json']);
  expect(mixed.code, mixed.stderr).toBe(0);
  expect(mixed.stderr).toMatch(/skipped 3 of 7 files/);
  for (const line of ['mixed/1a.png: truncated PNG data', 'mixed/2a.jpg: unknown JPEG marker', 'mixed/odd/0.png: 5 x 5 pixels']) {
    expect(mixed.stderr).toContain(`  ${line}`);
  }
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
  const { skipped, ...stats } = read('mixed.json');
  const { skipped: none, ...expected } = read('good.json');
  expect(stats).toEqual(expected);
  expect(none).toEqual([]);
  expect(skipped).toEqual([
    { path: 'mixed/1a.png', reason: expect.stringMatching(/^truncated PNG data/) },
    { path: 'mixed/2a.jpg', reason: expect.stringMatching(/^unknown JPEG marker/) },
    { path: 'mixed/odd/0.png', reason: expect.stringMatching(/^5 x 5 pixels, the first image \(mixed\/0\.png\) is 9 x 7/) },
  ]);
  expect(readFileSync(join(dir, 'mixed-out', 'mean.png'))).toEqual(readFileSync(join(dir, 'good-out', 'mean.png')));

  // Without --skip-bad the first bad file in name order stops the run; with only bad files it is an error.
  expectFailure(await normgpu(['stats', 'mixed', '--backend', 'cpu', '--quiet']), 1, /^normgpu: cannot decode mixed\/1a\.png: truncated PNG data/);
  mkdirSync(join(dir, 'allbad'));
  writeFileSync(join(dir, 'allbad', 'a.png'), await truncatedPng());
  writeFileSync(join(dir, 'allbad', 'b.jpg'), GARBAGE_JPEG);
  const allBad = await normgpu(['stats', 'allbad', '--skip-bad', '--backend', 'cpu', '--quiet']);
  expectFailure(allBad, 1, /^normgpu: none of the 2 files in allbad could be used$/);
  expect(allBad.stderr).toContain('  allbad/b.jpg: unknown JPEG marker');
});

test('flags: out-of-range, non-integer or missing values and unknown flags are one-line usage errors naming the flag', async () => {
  await writePngs('flags', 1, 4, 4);
  const usage = async (args: string[], message: RegExp) => expectFailure(await normgpu(['stats', 'flags', ...args]), 2, message);
  await usage(['--size', '100000'], /^normgpu: --size needs an integer from 1 to 4096, got '100000' \(.*GPU buffer/);
  await usage(['--size', '0'], /^normgpu: --size needs an integer from 1 to 4096, got '0'/);
  await usage(['--size', 'abc'], /^normgpu: --size needs an integer from 1 to 4096, got 'abc'/);
  await usage(['--size', '2.5'], /^normgpu: --size needs an integer from 1 to 4096, got '2\.5'/);
  await usage(['--size'], /^normgpu: option '--size <value>' argument missing/);
  await usage(['--batch', '5000'], /^normgpu: --batch needs an integer from 1 to 4096, got '5000'/);
  await usage(['--frobnicate'], /^normgpu: unknown option '--frobnicate'/);
  await usage(['--skip-bad=yes'], /^normgpu: option '--skip-bad' does not take an argument/);
});
