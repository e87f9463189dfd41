/**
 * The published package as a new user gets it: `npm pack` of the build (`npm test` builds
 * first), installed offline into a fresh project without the optional peers (`webgpu`, `pngjs`,
 * `jpeg-js`). There its types must check without skipLibCheck under each moduleResolution,
 * it must run from ESM and CommonJS on the CPU backend, a browser app must bundle it, and the
 * CLI must name the packages it misses. Last, a Node run with Dawn must keep stderr clean.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type Rolldown } from 'vite';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { REPO_ROOT } from './browser/harness';

const exec = promisify(execFile);
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** What the tarball may hold: the library, its types, the CLI (npm adds package.json and README). */
const PUBLISHED = ['README.md', 'dist/cli.js', 'dist/normgpu.d.ts', 'dist/normgpu.js', 'package.json'];
/** Variables that point Vulkan at a driver or silence it: a bare user's shell has none. */
const VULKAN_VARS = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES', 'XDG_RUNTIME_DIR'];

let work = '';
let app = '';
let packed: { path: string; size: number }[] = [];

/** The environment of a child process: no npm script variables (npm_config_local_prefix would send `npm install` to this repo), none of VULKAN_VARS. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') && !VULKAN_VARS.includes(k)));
}

/** Runs a command; resolves with its exit code and output instead of rejecting on failure. */
async function run(file: string, args: string[], cwd = app): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd, env: childEnv(), timeout: 120_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const f = e as { code?: number; stdout?: string; stderr?: string };
    return { code: f.code ?? -1, stdout: f.stdout ?? '', stderr: f.stderr ?? '' };
  }
}

/** `npm <args>` against a cache of this test's own: nothing here may need the network. */
async function npm(args: string[], cwd = app): Promise<string> {
  const r = await run('npm', [...args, '--cache', join(work, 'npm-cache'), '--offline', '--no-audit', '--no-fund'], cwd);
  if (r.code !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Packs a folder into `work`; returns the tarball's path. */
async function pack(dir: string): Promise<string> {
  const [info] = JSON.parse(await npm(['pack', dir, '--json', '--ignore-scripts', '--pack-destination', work], work)) as { filename: string; files: { path: string; size: number }[] }[];
  if (dir === REPO_ROOT) packed = info.files;
  return join(work, info.filename);
}

/** Bytes of the regular files under `dir` (links not followed). */
function treeBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => {
    const p = join(dir, name);
    const st = lstatSync(p);
    return sum + (st.isDirectory() ? treeBytes(p) : st.isFile() ? st.size : 0);
  }, 0);
}

/** LayerNorm over rows of 4 in float64, PyTorch's formula (biased variance, eps 1e-5). */
function layerNormRows(x: number[]): number[] {
  return x.map((_, i) => {
    const row = x.slice(i - (i % 4), i - (i % 4) + 4);
    const mean = row.reduce((a, v) => a + v, 0) / 4;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / 4;
    return (x[i] - mean) / Math.sqrt(variance + 1e-5);
  });
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'normgpu.d.ts'))) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  work = mkdtempSync(join(tmpdir(), 'normgpu-package-'));
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const tarball = await pack(REPO_ROOT);
  // The one dependency, packed from this repo's node_modules so that the install is offline.
  const types = await pack(join(REPO_ROOT, 'node_modules', '@webgpu', 'types'));
  await npm(['install', tarball, types]);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the library, its one bundled d.ts and the CLI; the manifest keeps the optional packages optional', () => {
  expect(packed.map((f) => f.path).sort()).toEqual(PUBLISHED);
  const manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'normgpu', 'package.json'), 'utf8'));
  expect(manifest.sideEffects).toBe(false);
  expect(Object.keys(manifest.dependencies)).toEqual(['@webgpu/types']);
  for (const peer of ['webgpu', 'pngjs', 'jpeg-js']) expect(manifest.peerDependenciesMeta[peer], peer).toEqual({ optional: true });
  // Every import between published files resolves inside the package.
  const dist = join(app, 'node_modules', 'normgpu', 'dist');
  for (const file of ['normgpu.js', 'cli.js']) {
    for (const [, spec] of readFileSync(join(dist, file), 'utf8').matchAll(/from\s*"(\.[^"]+)"/g)) {
      expect(existsSync(join(dist, spec)), `${file} imports ${spec}`).toBe(true);
    }
  }
  const dts = readFileSync(join(dist, 'normgpu.d.ts'), 'utf8');
  expect(dts.startsWith('/// <reference types="@webgpu/types" />')).toBe(true);
  expect(dts).not.toMatch(/from\s*['"]\.|import\(['"]\./);
});

test('installing it into a fresh browser project adds under 1 MB', () => {
  const bytes = treeBytes(join(app, 'node_modules'));
  console.log(`[package] fresh install: ${(bytes / 1024).toFixed(0)} KiB in node_modules (tarball files: ${packed.reduce((a, f) => a + f.size, 0)} bytes)`);
  expect(bytes).toBeLessThan(1_000_000);
});

test('its types check without skipLibCheck under moduleResolution bundler, node16 and nodenext', async () => {
  copyFileSync(join(REPO_ROOT, 'test', 'package', 'usage.ts'), join(app, 'usage.ts'));
  for (const [resolution, module] of [['bundler', 'esnext'], ['node16', 'node16'], ['nodenext', 'nodenext']]) {
    const config = join(app, `tsconfig.${resolution}.json`);
    // A browser project's lib and no global types of its own: @webgpu/types must come from
    // normgpu. skipDefaultLibCheck skips only TypeScript's own lib.*.d.ts (most of the time).
    const compilerOptions = {
      target: 'es2022', module, moduleResolution: resolution, lib: ['es2022', 'dom'], types: [], strict: true,
      skipLibCheck: false, skipDefaultLibCheck: true, outDir: `out-${resolution}`,
    };
    writeFileSync(config, JSON.stringify({ compilerOptions, files: ['usage.ts'] }));
    const r = await run(process.execPath, [TSC, '-p', config]);
    expect(r.stdout + r.stderr, resolution).toBe('');
    expect(r.code, resolution).toBe(0);
  }
}, 300_000);

test('it runs from ESM: without `webgpu`, auto falls back to the CPU with one notice, backend webgpu throws naming the package', async () => {
  const r = await run(process.execPath, [join('out-nodenext', 'usage.js')]);
  expect(r.code, r.stderr).toBe(0);
  const [thrown, result] = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
  expect(result.backend).toBe('cpu');
  expect(result.device).toBe(true);
  expect(result.code).toBe('WEBGPU_UNAVAILABLE');
  expect(result.again).toBe('cpu');
  expect(thrown.message).toContain('npm install webgpu');
  const want = layerNormRows([1, 2, 3, 4, 10, 20, 30, 40]);
  result.values.forEach((v: number, i: number) => expect(Math.abs(v - want[i])).toBeLessThan(1e-6));
  // Two fallbacks, one line.
  expect(r.stderr).toBe('normgpu: using the CPU backend: Node has WebGPU only through the optional package `webgpu` (Dawn), which is not installed: npm install webgpu\n');
});

test('require() from CommonJS loads it', async () => {
  writeFileSync(join(app, 'require.cjs'), "const n = require('normgpu');\nn.createEngine({ backend: 'cpu' }).then((e) => console.log(typeof n.createEngine, e.backend));\n");
  const r = await run(process.execPath, ['require.cjs']);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim()).toBe('function cpu');
});

test('a browser app of createEngine + layerNorm bundles without Node modules; its size (minified + gzip)', async () => {
  const bundle = async (name: string, code: string) => {
    writeFileSync(join(app, `${name}.js`), code);
    const out = (await build({
      root: app, configFile: false, logLevel: 'silent', mode: 'production',
      build: { outDir: join(work, `dist-${name}`), target: 'es2022', rolldownOptions: { input: join(app, `${name}.js`) } },
    })) as Rolldown.RolldownOutput;
    const chunks = out.output.filter((o): o is Rolldown.OutputChunk => o.type === 'chunk');
    const js = chunks.map((c) => c.code).join('\n');
    // No import of a Node builtin (Node-only code reaches them through process.getBuiltinModule).
    expect(js, name).not.toMatch(/__vite-browser-external|(from|import)\s*\(?\s*["'`]node:|pngjs|jpeg-js/);
    return { min: Buffer.byteLength(js), gzip: chunks.reduce((a, c) => a + gzipSync(c.code).length, 0) };
  };
  const layerNorm = await bundle('layernorm', [
    "import { createEngine } from 'normgpu';",
    'const engine = await createEngine();',
    "const x = engine.tensor(new Float32Array(8), [2, 4]);",
    'console.log(await engine.layerNorm(x, { normalizedShape: [4] }).read());',
  ].join('\n'));
  const all = await bundle('everything', "import * as normgpu from 'normgpu';\nconsole.log(normgpu);\n");
  const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`;
  console.log(`[package] app bundle, createEngine + layerNorm: ${kB(layerNorm.min)} minified, ${kB(layerNorm.gzip)} gzip; whole library: ${kB(all.min)}, ${kB(all.gzip)} gzip`);
  expect(layerNorm.min).toBeLessThan(all.min);
  // About 33 kB gzip when written; twice that means something large got pulled in.
  expect(layerNorm.gzip).toBeLessThan(64_000);
});

test('the CLI names the optional image packages it misses, and runs once they are installed', async () => {
  const header = new DataView(new ArrayBuffer(16));
  [0x00000803, 4, 3, 2].forEach((v, i) => header.setUint32(i * 4, v, false));
  writeFileSync(join(app, 'x-idx3-ubyte'), new Uint8Array([...new Uint8Array(header.buffer), ...Array.from({ length: 24 }, (_, k) => k * 10)]));
  const bin = join(app, 'node_modules', '.bin', 'normgpu');
  const missing = await run(bin, ['stats', 'x-idx3-ubyte', '--quiet', '--backend', 'cpu']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/^normgpu: .*optional package 'pngjs' \(npm install pngjs jpeg-js\)/m);
  await npm(['install', await pack(join(REPO_ROOT, 'node_modules', 'pngjs')), await pack(join(REPO_ROOT, 'node_modules', 'jpeg-js'))]);
  const ok = await run(bin, ['stats', 'x-idx3-ubyte', '--quiet', '--backend', 'cpu']);
  expect(ok.code, ok.stderr).toBe(0);
  expect(ok.stdout).toContain('images: 4, 1 channel(s), 3x2');
  expect(existsSync(join(app, 'mean.png'))).toBe(true);
});

test('a Node run with Dawn and no Vulkan variables set prints nothing on stderr', async () => {
  const script = join(work, 'dawn.mjs');
  writeFileSync(script, [
    `import { createEngine } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist', 'normgpu.js')).href)};`,
    "const engine = await createEngine({ backend: 'webgpu' });",
    "const y = engine.layerNorm(engine.tensor([1, 2, 3, 4], [1, 4]), { normalizedShape: [4] });",
    'console.log(engine.backend, (await y.read()).length);',
    'engine.dispose();',
    'process.exit(0);',
  ].join('\n'));
  const r = await run(process.execPath, [script], work);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout.trim()).toBe('webgpu 4');
  expect(r.stderr).not.toContain('XDG_RUNTIME_DIR');
  // With a GPU device node SwiftShader is only added to the system's drivers (vulkan-env.ts),
  // and Dawn may still warn about Mesa's lavapipe there; without one, not a line.
  const gpuNode = ['/dev/dri', '/dev/nvidiactl', '/dev/dxg'].some((p) => existsSync(p));
  if (!gpuNode) expect(r.stderr).toBe('');
});
