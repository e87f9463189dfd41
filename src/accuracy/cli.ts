/**
 * Node CLI for the golden accuracy suite:
 *
 *   npm run accuracy -- [--golden DIR] [--backend webgpu|cpu|auto] [--json FILE]
 *
 * Prints one line per case and a summary, optionally writes the report as JSON, and exits
 * with status 1 when a supported case fails (2 on a usage or setup error).
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createEngine } from '../index';
import { runGoldenSuite, type CaseResult, type GoldenManifest } from './runner';

const USAGE = 'usage: npm run accuracy -- [--golden DIR] [--backend webgpu|cpu|auto] [--json FILE]';
const BACKENDS = ['webgpu', 'cpu', 'auto'] as const;
type Backend = (typeof BACKENDS)[number];

interface Args {
  golden: string;
  backend: Backend;
  json?: string;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args | 'help' {
  // webgpu by default: an accuracy run that silently measured the CPU backend would mislead.
  const args: Args = { golden: 'test/golden', backend: 'webgpu' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value\n${USAGE}`);
    if (flag === '--golden') args.golden = value;
    else if (flag === '--json') args.json = value;
    else if (flag === '--backend') {
      if (!(BACKENDS as readonly string[]).includes(value)) throw new UsageError(`unknown backend '${value}'\n${USAGE}`);
      args.backend = value as Backend;
    } else throw new UsageError(`unknown argument '${flag}'\n${USAGE}`);
  }
  return args;
}

function formatError(e: number | null): string {
  return e === null ? '-' : e.toExponential(3);
}

function formatCase(r: CaseResult): string {
  const verdict = r.pass === null ? 'UNSUPPORTED' : r.pass ? 'PASS' : 'FAIL';
  const line = [
    r.id.padEnd(28),
    r.op.padEnd(17),
    (r.layout ?? '-').padEnd(9),
    formatError(r.maxScaledError).padStart(10),
    r.tolerance.toExponential(0).padStart(6),
    verdict,
  ].join('  ');
  return r.reason && r.pass !== true ? `${line}  (${r.reason})` : line;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  const manifest = JSON.parse(await readFile(join(args.golden, 'manifest.json'), 'utf8')) as GoldenManifest;
  const loadFile = async (name: string): Promise<ArrayBuffer> => {
    const buf = await readFile(join(args.golden, name));
    // A Node Buffer may be a view into a shared pool: copy out exactly its bytes.
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  };

  const engine = await createEngine({ backend: args.backend });
  try {
    console.log(`${'case'.padEnd(28)}  ${'op'.padEnd(17)}  ${'layout'.padEnd(9)}  ${'scaled err'.padStart(10)}  ${'tol'.padStart(6)}  verdict`);
    const report = await runGoldenSuite(engine, manifest, loadFile, (r) => console.log(formatCase(r)));
    const count = (pass: boolean | null): number => report.cases.filter((r) => r.pass === pass).length;
    const failed = count(false);
    console.log(`\n${count(true)} passed, ${failed} failed, ${count(null)} unsupported of ${report.cases.length} cases`);
    console.log(`backend: ${report.backend}, adapter: ${report.adapter ?? 'none (CPU float64 reference)'}`);
    if (args.json) {
      await mkdir(dirname(args.json), { recursive: true });
      // Infinity (a NaN or length mismatch) becomes null in JSON; `pass` still says false.
      await writeFile(args.json, JSON.stringify(report, null, 1) + '\n');
      console.log(`report written to ${args.json}`);
    }
    return failed > 0 ? 1 : 0;
  } finally {
    engine.dispose();
  }
}

// process.exit in every path: a Dawn device keeps the event loop alive after main returns.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof UsageError ? err.message : err);
    process.exit(2);
  },
);
