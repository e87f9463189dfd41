/**
 * Reusable pieces for tests that run normgpu inside headless Chromium: finding the browser,
 * launching it with a WebGPU adapter, and serving the build and test data over HTTP
 * (ES modules and fetch need http://, not file://).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer';

/** Repository root (this file is test/browser/harness.ts). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Flags that give headless Chromium a WebGPU adapter on machines without a GPU (SwiftShader,
 * Vulkan on the CPU); a real GPU is still preferred where the browser finds one. The last four
 * keep a CI run from reaching the network. `--user-data-dir` is added per launch.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Path of the Chromium to drive: `CHROME_PATH`, else /usr/bin/chromium. Throws when there is
 * none, so that a browser test fails instead of silently skipping.
 */
export function findChromium(): string {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  throw new Error(
    'No Chromium found for the browser tests: set CHROME_PATH to a Chromium/Chrome binary or ' +
      'install one (Debian: apt-get install -y chromium libvulkan1; .ci/run does this).',
  );
}

/** A launched browser with its throw-away profile. */
export interface LaunchedBrowser {
  browser: Browser;
  /** Closes the browser and deletes its profile directory. */
  close(): Promise<void>;
}

/** Launch headless Chromium with `CHROMIUM_FLAGS` and a fresh profile under the OS temp dir. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<LaunchedBrowser> {
  const executablePath = findChromium();
  const userDataDir = await mkdtemp(join(tmpdir(), 'normgpu-chromium-'));
  try {
    const browser = await puppeteer.launch({
      executablePath,
      headless: true,
      userDataDir,
      args: [...CHROMIUM_FLAGS, ...extraArgs],
      // Software WebGPU runs long single evaluate() calls; the 180 s default is tight.
      protocolTimeout: 600_000,
    });
    return {
      browser,
      async close() {
        try {
          await browser.close();
        } finally {
          await rm(userDataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
}

const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', // module scripts are refused without a JS type
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css',
  '.wgsl': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm', // WebAssembly.instantiateStreaming refuses any other type
};

/** A running static file server. */
export interface StaticServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Serve directories read-only on 127.0.0.1 at a random port. `mounts` maps URL prefixes
 * (`'/dist/'`) to directories; the longest matching prefix wins, and paths that resolve
 * outside their directory are refused.
 */
export async function serveStatic(mounts: Readonly<Record<string, string>>): Promise<StaticServer> {
  const table = Object.entries(mounts)
    .map(([prefix, dir]) => ({ prefix, root: resolve(dir) }))
    .sort((a, b) => b.prefix.length - a.prefix.length);

  // The file a request path names, or null when no mount holds it.
  const lookup = (url: string): string | null => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(url, 'http://localhost').pathname);
    } catch {
      return null; // malformed escapes
    }
    const mount = table.find((m) => path.startsWith(m.prefix));
    if (!mount) return null;
    const file = resolve(mount.root, '.' + sep + path.slice(mount.prefix.length));
    return file.startsWith(mount.root + sep) ? file : null;
  };

  const server = createServer((req, res) => {
    const file = req.method === 'GET' ? lookup(req.url ?? '/') : null;
    if (file === null) {
      res.writeHead(req.method === 'GET' ? 404 : 405).end();
      return;
    }
    stat(file)
      .then((s) => (s.isFile() ? readFile(file) : Promise.reject(new Error('not a file'))))
      .then(
        (body) => {
          res.writeHead(200, {
            'content-type': MIME[extname(file)] ?? 'application/octet-stream',
            'cache-control': 'no-store',
          });
          res.end(body);
        },
        () => res.writeHead(404).end(),
      );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok, fail) => {
        server.closeAllConnections();
        server.close((err) => (err ? fail(err) : ok()));
      }),
  };
}

/**
 * Forward what a page reports as wrong (console errors and warnings, uncaught exceptions,
 * failed requests and HTTP errors) to the test log with a `[page]` prefix, so that a WebGPU
 * validation message or a 404 on a module shows up next to the failing assertion.
 */
export function forwardPageProblems(page: Page): void {
  page.on('console', (msg) => {
    const type = msg.type();
    if (type === 'error' || type === 'warn') console.error(`[page ${type}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`[page exception] ${err instanceof Error ? err.stack ?? err.message : String(err)}`));
  page.on('requestfailed', (req) => console.error(`[page request failed] ${req.url()}: ${req.failure()?.errorText ?? ''}`));
  page.on('response', (res) => {
    if (res.status() >= 400) console.error(`[page http ${res.status()}] ${res.url()}`);
  });
}

/** The demo page built into a temporary folder and served by `vite preview`. */
export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

/** Build the demo (demo/vite.config.ts) and serve it on a free port. */
export async function serveDemo(): Promise<DemoServer> {
  const { build, preview } = await import('vite');
  const configFile = join(REPO_ROOT, 'demo', 'vite.config.ts');
  const outDir = await mkdtemp(join(tmpdir(), 'normgpu-demo-'));
  await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true, sourcemap: false } });
  const server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { port: 0, host: '127.0.0.1', open: false } });
  const url = server.resolvedUrls?.local[0] ?? '';
  if (!url) throw new Error('vite preview gave no URL');
  return {
    url,
    close: async () => {
      await server.close();
      await rm(outDir, { recursive: true, force: true });
    },
  };
}

/**
 * The demo at `url + path` in a new page, once it has started (or failed to: the test then
 * fails on `window.demo.error`); `problems` collects its console errors, uncaught exceptions,
 * failed requests and HTTP errors, for the test to assert empty.
 */
export async function openDemo(browser: Browser, url: string, path: string, problems: string[]): Promise<Page> {
  const page = await browser.newPage();
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
  if (error !== undefined) throw new Error(`the demo failed to start: ${String(error)}`);
  return page;
}
