/**
 * `npm run bench`: builds the demo, serves it, runs its benchmark module in headless Chromium
 * (WebGPU on whatever adapter the browser finds: SwiftShader on GPU-less machines), prints the
 * tables and writes bench/results.json, bench/results.md and bench/chart.svg.
 *
 *   npm run bench -- [--full | --quick] [--contenders normgpu,tfjs,...] [--filter groupNorm,NHWC]
 *                    [--iterations N] [--no-build] [--write-readme]
 *
 * Default: every op, layout and contender at the two smaller conv shapes plus the transformer
 * shapes, and the small-op chains. --full adds [32,64,112,112]. --quick is the demo's small
 * smoke suite. Runs that are not the default or --full one (--quick, --filter, --contenders,
 * --iterations) write bench/results-partial.json instead. README.md is left alone unless
 * --write-readme is given (complete runs only): then the report goes between its bench markers.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, platform, release } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';
import { launchChromium } from '../test/browser/harness';
import { chartSvg, markdownReport, markdownTables, slowerThanPeers } from '../demo/bench/format';
import type { BenchReport } from '../demo/bench/runner';
import { CONTENDER_IDS, type BrowserBenchOptions, type ContenderId } from '../demo/bench/browser';
import { cliArgs, positiveInt, usageError } from './cli-args';

// The bundle runs from node_modules/.cache/normgpu-bench/.
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const USAGE = `usage: npm run bench -- [--full | --quick] [--contenders a,b] [--filter s1,s2] [--iterations N] [--no-build] [--write-readme]
  contenders: ${CONTENDER_IDS.join(', ')}`;

interface Args {
  scope: 'quick' | 'default' | 'full';
  contenders?: ContenderId[];
  filter?: string[];
  iterations?: number;
  build: boolean;
  writeReadme: boolean;
}

/** A run that is not the whole default or --full suite. */
const isPartial = (a: Args) => a.scope === 'quick' || !!a.filter || !!a.contenders || a.iterations !== undefined;

function readArgs(): Args {
  const values = cliArgs({
    full: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    contenders: { type: 'string' },
    filter: { type: 'string' },
    iterations: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'write-readme': { type: 'boolean', default: false },
  }, USAGE);
  if (values.full && values.quick) usageError('--full and --quick exclude each other', USAGE);
  const contenders = values.contenders?.split(',');
  const unknown = contenders?.filter((c) => !(CONTENDER_IDS as readonly string[]).includes(c));
  if (unknown?.length) usageError(`unknown contender ${unknown.join(', ')}`, USAGE);
  const args: Args = {
    scope: values.full ? 'full' : values.quick ? 'quick' : 'default',
    contenders: contenders as ContenderId[] | undefined,
    filter: values.filter?.split(','),
    iterations: positiveInt('iterations', values.iterations, undefined, USAGE),
    build: !values['no-build'],
    writeReadme: values['write-readme'],
  };
  if (args.writeReadme && isPartial(args)) usageError('--write-readme needs a complete run: no --quick, --filter, --contenders or --iterations', USAGE);
  return args;
}

async function main(): Promise<number> {
  const args = readArgs();
  const t0 = Date.now();
  const config = join(REPO_ROOT, 'demo', 'vite.config.ts');
  if (args.build) {
    console.log('bench: building the demo (demo-dist/)');
    await build({ configFile: config, logLevel: 'warn' });
  }
  const server = await preview({ configFile: config, logLevel: 'warn', preview: { port: 0, host: '127.0.0.1', open: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview gave no URL');
  // --expose-gc: the runner collects after each CPU contender's call, outside the timings.
  const chromium = await launchChromium(['--js-flags=--expose-gc']);
  let report: BenchReport | undefined;
  try {
    const browserVersion = await chromium.browser.version();
    const page = await chromium.browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') console.error(`[page ${m.type()}] ${m.text()}`);
    });
    page.on('pageerror', (e) => console.error(`[page exception] ${e instanceof Error ? e.message : String(e)}`));
    await page.goto(`${url}?bench`);
    await page.waitForFunction('window.normgpuBench !== undefined', { timeout: 60_000 });
    const options: BrowserBenchOptions = {
      scope: args.scope,
      contenders: args.contenders,
      filter: args.filter,
      iterations: args.iterations,
      chains: true,
      environment: {
        browser: browserVersion,
        machine: `${cpus()[0]?.model ?? '?'} x${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}`,
        node: process.version,
      },
    };
    await page.evaluate(`window.normgpuBench.start(${JSON.stringify(options)})`);
    let printed = 0;
    let lastProgress = '';
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const state = JSON.parse(await page.evaluate('JSON.stringify({ done: window.normgpuBench.state.done, progress: window.normgpuBench.state.progress, log: window.normgpuBench.state.log, error: window.normgpuBench.state.error })') as string) as {
        done: boolean; progress: string; log: string[]; error?: string;
      };
      for (; printed < state.log.length; printed++) console.log(`  ${state.log[printed]}`);
      if (state.progress !== lastProgress) {
        lastProgress = state.progress;
        console.log(`bench [${((Date.now() - t0) / 1000).toFixed(0)} s] ${state.progress}`);
      }
      if (state.done) {
        if (state.error) throw new Error(`benchmark failed in the page: ${state.error}`);
        break;
      }
    }
    report = JSON.parse(await page.evaluate('JSON.stringify(window.normgpuBench.state.report)') as string) as BenchReport;
  } finally {
    await chromium.close();
    await server.close();
  }

  const partial = isPartial(args);
  const env = report.environment;
  console.log(`\n## normgpu benchmark (${args.scope}${partial ? ', partial' : ''})\n`);
  console.log(`Machine: ${env.machine}; browser: Chromium ${env.browser}; adapter: ${env.adapter}; ${report.seconds} s in the page.\n`);
  for (const c of report.contenders) {
    console.log(`- ${c.label}: ${c.error ? `FAILED TO START: ${c.error}` : Object.entries(c.info).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  }
  console.log('');
  console.log(markdownTables(report));
  const slower = slowerThanPeers(report);
  console.log(slower.length ? `normgpu is slower than a peer on ${slower.length} workload(s):\n${slower.map((l) => `- ${l}`).join('\n')}\n` : 'normgpu is faster than every peer on every workload.\n');

  const bench = join(REPO_ROOT, 'bench');
  mkdirSync(bench, { recursive: true });
  const written: string[] = [];
  const write = (path: string, text: string) => {
    writeFileSync(path, text);
    written.push(relative(process.cwd(), path) || path);
  };
  write(join(bench, partial ? 'results-partial.json' : 'results.json'), JSON.stringify(report, null, 1) + '\n');
  if (!partial) {
    write(join(bench, 'chart.svg'), chartSvg(report) + '\n');
    write(join(bench, 'results.md'), markdownReport(report, 'chart.svg'));
  }
  if (args.writeReadme) {
    const readme = updateReadme(markdownReport(report, 'bench/chart.svg'));
    if (readme) written.push(relative(process.cwd(), readme));
  }
  console.log(`bench: report written to ${written.join(', ')}`);
  if (!args.writeReadme) console.log('bench: README.md left as it is (--write-readme puts a complete run\'s report into it)');
  console.log(`bench: total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

const README_START = '<!-- bench:start (written by npm run bench) -->';
const README_END = '<!-- bench:end -->';

/**
 * Replace the README's benchmark section (between the markers) with `report`, headings demoted.
 * Returns the README's path, or null (file untouched) when it has no markers.
 */
function updateReadme(report: string): string | null {
  const path = join(REPO_ROOT, 'README.md');
  const readme = readFileSync(path, 'utf8');
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) {
    console.log('bench: README.md has no bench markers; left as it is');
    return null;
  }
  const body = report.replace(/^# /m, '### ').trimEnd();
  writeFileSync(path, `${readme.slice(0, start + README_START.length)}\n${body}\n${readme.slice(end)}`);
  return path;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  },
);
