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
import { parseArgs } from 'node:util';
import { createEngine } from '../index';
import { runGoldenSuite, type CaseResult, type GoldenManifest } from './runner';

// A malformed command line: exit status 2. Not src/cli's class: sharing a module between the
// two CLIs would split it into a chunk the package does not ship.
class UsageError extends Error {}

const USAGE = 'usage: npm run accuracy -- [--golden DIR] [--backend webgpu|cpu|auto] [--json FILE]';
const BACKENDS = ['webgpu', 'cpu', 'auto'] as const;
type Backend = (typeof BACKENDS)[number];

interface Args {
  golden: string;
  backend: Backend;
  json?: string;
}

/**
 * The command line (strict: an unknown flag or a stray argument is a usage error), or 'help'.
 * Defaults: --golden test/golden, --backend webgpu (an accuracy run that silently measured the
 * CPU backend would mislead).
 */
function parseCliArgs(argv: readonly string[]): Args | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        golden: { type: 'string', default: 'test/golden' },
        backend: { type: 'string', default: 'webgpu' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw e;
    // First sentence only: the rest suggests '--' for positionals, which this command has none of.
    const first = (e as Error).message.split(/\.\s/)[0];
    throw new UsageError(`${first.charAt(0).toLowerCase()}${first.slice(1)}\n${USAGE}`);
  }
  if (values.help) return 'help';
  if (!(BACKENDS as readonly string[]).includes(values.backend)) throw new UsageError(`unknown backend '${values.backend}'\n${USAGE}`);
  return { golden: values.golden, backend: values.backend as Backend, json: values.json };
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
  const args = parseCliArgs(process.argv.slice(2));
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
