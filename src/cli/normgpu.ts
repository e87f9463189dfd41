#!/usr/bin/env node
/**
 * The `normgpu` command (package.json `bin`), Node only:
 *
 *   npx normgpu stats <folder of images | IDX file[.gz]> [--size 224] [--json out.json] [--skip-bad]
 *
 * Exits 0 on success, 1 on an error, 2 on a usage error; every failure ends in one line
 * `normgpu: <message>` on stderr, never a stack trace.
 */
import { oneLine, UsageError } from './errors';
import { runStats, STATS_USAGE } from './stats';

const USAGE = `usage: normgpu <command> [options]

commands:
  stats    per-channel mean/std, min/max and the mean/std images of a dataset

${STATS_USAGE}`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'stats') {
    return runStats(rest, {
      out: (line) => console.log(line),
      err: (text) => process.stderr.write(text),
      tty: process.stderr.isTTY === true,
    });
  }
  throw new UsageError(command === undefined ? 'no command given' : `unknown command '${command}'`);
}

/** One line on stderr and exit 2 for a usage error, 1 for any other. */
function fail(err: unknown): never {
  const usage = err instanceof UsageError;
  console.error(`normgpu: ${oneLine(err)}${usage ? " (see 'normgpu --help')" : ''}`);
  process.exit(usage ? 2 : 1);
}

// Whatever escapes main (a bug, a stray GPU callback) still ends in one line, not a stack trace.
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

// process.exit in every path: a Dawn device keeps the event loop alive after main returns.
main(process.argv.slice(2)).then((code) => process.exit(code), fail);
