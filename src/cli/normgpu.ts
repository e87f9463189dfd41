#!/usr/bin/env node
/**
 * The `normgpu` command (package.json `bin`), Node only:
 *
 *   npx normgpu stats <folder of images | IDX file[.gz]> [--size 224] [--json out.json]
 *
 * Exits 0 on success, 1 on an error, 2 on a usage error.
 */
import { NormGpuError } from '../errors';
import { runStats, STATS_USAGE, UsageError } from './stats';

const USAGE = `usage: normgpu <command> [options]

commands:
  stats    per-channel mean/std, min/max and the mean/std images of a dataset

${STATS_USAGE}`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'stats') {
    return runStats(rest, {
      out: (line) => console.log(line),
      err: (text) => process.stderr.write(text),
      tty: process.stderr.isTTY === true,
    });
  }
  throw new UsageError(`unknown command '${command}'`);
}

// process.exit in every path: a Dawn device keeps the event loop alive after main returns.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) console.error(`normgpu: ${err.message}\n\n${USAGE}`);
    else console.error(`normgpu: ${err instanceof NormGpuError || err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
