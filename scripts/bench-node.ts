/**
 * `npm run bench:node`: the normgpu contenders (WebGPU through Dawn, and the CPU backend), the
 * small-op chains and the copy ceilings in Node, for machines with a GPU and no browser. Same
 * workloads, timing and tables as `npm run bench`, without the browser-only peers. Writes
 * bench/results-node.json.
 *
 *   npm run bench:node -- [--full | --quick] [--filter s1,s2] [--iterations N] [--no-cpu]
 *   npm run bench:node -- --gpu-check [--budget S] [--filter s1,s2]
 *
 * `--gpu-check` runs scripts/gpu-check.ts instead: adapter, accuracy goldens and a benchmark
 * subset within a hard budget (default 300 s; past it the process exits with status 3).
 */
import { writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allChains } from '../demo/bench/chains';
import { markdownTables } from '../demo/bench/format';
import { runBenchmark } from '../demo/bench/runner';
import { allWorkloads, quickWorkloads } from '../demo/bench/workloads';
import { normgpuCpu, normgpuWebGpu } from '../demo/bench/contenders/normgpu';
import { cliArgs, positiveInt, usageError } from './cli-args';
import { GPU_CHECK_BUDGET_S, gpuCheck, gpuCheckWorkloads } from './gpu-check';

const USAGE = 'usage: npm run bench:node -- [--full | --quick] [--filter s1,s2] [--iterations N] [--no-cpu]\n'
  + '       npm run bench:node -- --gpu-check [--budget S] [--filter s1,s2]';
// The bundle runs from node_modules/.cache/normgpu-bench/.
const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

async function main(): Promise<number> {
  const values = cliArgs({
    full: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    filter: { type: 'string' },
    iterations: { type: 'string' },
    'no-cpu': { type: 'boolean', default: false },
    'gpu-check': { type: 'boolean', default: false },
    budget: { type: 'string' },
  }, USAGE);
  const filter = values.filter?.split(',');
  const wanted = (id: string) => !filter || filter.some((s) => id.includes(s));
  if (values['gpu-check']) {
    if (values.full || values.quick || values.iterations || values['no-cpu']) usageError('--gpu-check takes only --budget and --filter', USAGE);
    const budgetS = positiveInt('budget', values.budget, GPU_CHECK_BUDGET_S, USAGE);
    // The hard limit, whatever hangs: a check that cannot finish in its budget has failed.
    setTimeout(() => {
      console.error(`gpu-check: over its budget of ${budgetS} s, stopped`);
      process.exit(3);
    }, (budgetS + 5) * 1000).unref();
    const report = await gpuCheck({ root: REPO_ROOT, budgetS, workloads: gpuCheckWorkloads().filter((w) => wanted(w.id)), log: (l) => console.log(l) });
    return report.ok ? 0 : 1;
  }
  if (values.budget !== undefined) usageError('--budget goes with --gpu-check', USAGE);
  if (values.full && values.quick) usageError('--full and --quick exclude each other', USAGE);
  const scope = values.full ? 'full' : values.quick ? 'quick' : 'default';
  const iterations = positiveInt('iterations', values.iterations, undefined, USAGE);
  const cpu = !values['no-cpu'];
  const workloads = (scope === 'quick' ? quickWorkloads() : allWorkloads().filter((w) => scope === 'full' || w.tier === 'default')).filter((w) => wanted(w.id));
  const t0 = Date.now();
  const report = await runBenchmark({
    workloads,
    contenders: cpu ? [normgpuWebGpu, normgpuCpu] : [normgpuWebGpu],
    chains: allChains(iterations).filter((c) => wanted(c.id)),
    iterations,
    cpuMaxNumel: scope === 'full' ? 8_000_000 : undefined,
    environment: {
      runner: 'node (Dawn)',
      machine: `${cpus()[0]?.model ?? '?'} x${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}`,
      node: process.version,
      scope,
    },
    log: (line) => console.log(`  ${line}`),
    onProgress: (done, total, label) => console.log(`bench:node [${((Date.now() - t0) / 1000).toFixed(0)} s] ${done}/${total} ${label}`),
  });
  const adapter = report.contenders.find((c) => c.id === 'normgpu')?.info.adapter ?? 'none';
  console.log(`\n## normgpu benchmark in Node (${scope})\n`);
  console.log(`Machine: ${report.environment.machine}; adapter: ${adapter}; ${report.seconds} s.\n`);
  for (const c of report.contenders) if (c.error) console.log(`- ${c.label} FAILED TO START: ${c.error}\n`);
  console.log(markdownTables(report));
  const out = join(REPO_ROOT, 'bench', 'results-node.json');
  writeFileSync(out, JSON.stringify(report, null, 1) + '\n');
  console.log(`bench:node: wrote ${out}`);
  return report.contenders.some((c) => c.id === 'normgpu' && c.error) ? 1 : 0;
}

// Dawn keeps the process alive with an idle device: exit explicitly.
main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  },
);
