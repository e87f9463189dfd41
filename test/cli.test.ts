/**
 * The built `normgpu` command (package.json `bin` → dist/cli.js, made by `npm run build`, which
 * `npm test` runs first), as a user runs it: a child process on a folder of PNGs and on an IDX
 * file, its exit codes, and its JSON against the float64 statistics computed here.
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
  expect(usage.stderr).toMatch(/--size needs a positive integer/);
  expect((await normgpu(['frobnicate'])).code).toBe(2);
  const missing = await normgpu(['stats', 'no-such-folder']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toMatch(/no such file/);
});
