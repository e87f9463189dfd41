/**
 * Command lines of the bench scripts: Node's `util.parseArgs` (strict: an unknown flag or a
 * missing value is an error) with `--help` / `-h`; a mistake prints the usage and exits with 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** A command-line mistake: print the message and the usage, exit with status 2. */
export function usageError(message: string, usage: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

/** Parse `argv` (default: this process's arguments) against `options`; `--help` prints `usage` and exits. */
export function cliArgs<O extends Options>(options: O, usage: string, argv = process.argv.slice(2)) {
  const parse = () => parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  let values: ReturnType<typeof parse>;
  try {
    values = parse();
  } catch (e) {
    usageError(e instanceof Error ? e.message : String(e), usage);
  }
  if ((values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

/** `value` of flag `name` as a positive integer, or `fallback` when the flag is absent. */
export function positiveInt<T extends number | undefined>(name: string, value: string | undefined, fallback: T, usage: string): number | T {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usageError(`--${name} needs a positive integer, got ${value}`, usage);
  return n;
}
