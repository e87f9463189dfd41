/**
 * `normgpu stats <folder of images | IDX file> [options]`: dataset statistics from the command
 * line. Images (PNG, JPEG, found recursively) or the images of an MNIST-style IDX file (gzipped
 * or not) are decoded in batches and fed to a `DatasetStats`; prints per-channel mean and std on
 * the [0, 1] scale, writes the mean and std images as PNG (std scaled by 2, its largest possible
 * value on [0, 1] being 0.5) and, with --json, the statistics and the mergeable partial. A file
 * that cannot be used stops the run with its path and the reason, or with --skip-bad is listed
 * at the end.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DatasetStats, type DatasetStatsResult, type DatasetTransform } from '../api/dataset-stats';
import { createEngine, type Engine } from '../api/engine';
import { NormGpuError } from '../errors';
import type { ImageBytes } from '../api/preprocess';
import { UsageError } from './errors';
import { encodePng } from './images';
import { folderSource, idxSource, type Loaded } from './sources';

export { UsageError } from './errors';

/**
 * Largest --size. The mean and std images need float64 statistics per value: 48 bytes of GPU
 * partials for each of 3 x N x N values, one buffer binding, and a binding addresses at most
 * 4 GiB (Vulkan's limit is 32-bit; many devices allow 1 GiB). At 4096 that is 2.25 GiB, at 8192
 * 9 GiB, beyond every device.
 */
export const MAX_SIZE = 4096;

/**
 * Largest --batch: 4x the IDX default. Past a few thousand images a batch's GPU round trip is
 * long amortized, and two batches of decoded images are held at once (one reduced, the next
 * decoded), so more only costs memory.
 */
export const MAX_BATCH = 4096;

export const STATS_USAGE = `usage: normgpu stats <folder of images | IDX file[.gz]> [options]
  --size N            resize the shorter side to N and center-crop N x N, N from 1 to ${MAX_SIZE}
                      (default: native size; all images must then share it)
  --json FILE         write the statistics, the skipped files and the mergeable partial as JSON
  --out DIR           where mean.png and std.png go (default: .)
  --batch N           images per batch, 1 to ${MAX_BATCH} (default: 64 for a folder, 1024 for an
                      IDX file)
  --backend B         webgpu, cpu or auto (default: auto)
  --skip-bad          skip files that cannot be read or decoded (or, without --size, differ in
                      size from the first image) and list them at the end; without it the first
                      such file stops the run
  --quiet             no progress bar

exit status: 0 done, 1 error, 2 usage error`;

interface StatsArgs {
  input: string;
  size?: number;
  json?: string;
  out: string;
  batch?: number;
  backend: 'webgpu' | 'cpu' | 'auto';
  skipBad: boolean;
  quiet: boolean;
}

/** Where the command writes: stdout and stderr, and whether stderr is a terminal. */
export interface CliIo {
  out(line: string): void;
  err(text: string): void;
  tty: boolean;
}

/** A file --skip-bad left out, as the --json output lists it. */
export interface SkippedFile {
  path: string;
  reason: string;
}

const OPTIONS = {
  size: { type: 'string' },
  json: { type: 'string' },
  out: { type: 'string', default: '.' },
  batch: { type: 'string' },
  backend: { type: 'string', default: 'auto' },
  'skip-bad': { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** A whole number from 1 to `max`, or a usage error naming the flag. */
function integer(flag: string, v: string | undefined, max: number, why = ''): number | undefined {
  if (v === undefined) return undefined;
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= max)) throw new UsageError(`${flag} needs an integer from 1 to ${max}, got '${v}'${why}`);
  return n;
}

/** The first sentence of a `util.parseArgs` error ("Unknown option '--x'. To specify ..."). */
function parseArgsMessage(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw e;
  const first = (e as Error).message.split(/\.\s/)[0];
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/**
 * The `stats` arguments (strict: an unknown flag is a usage error), or 'help' for --help / -h.
 * Defaults: --out '.', --backend auto; --size and --batch unset (native size, per-source batch).
 */
export function parseStatsArgs(argv: readonly string[]): StatsArgs | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  const size = integer('--size', v.size, MAX_SIZE, ' (the per-pixel statistics of larger images pass the 4 GiB one GPU buffer binding can address)');
  const batch = integer('--batch', v.batch, MAX_BATCH);
  const backend = v.backend;
  if (backend !== 'webgpu' && backend !== 'cpu' && backend !== 'auto') throw new UsageError(`--backend needs webgpu, cpu or auto, got '${backend}'`);
  if (positionals.length === 0) throw new UsageError('stats needs a folder of images or an IDX file');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  return { input: positionals[0], size, json: v.json, out: v.out, batch, backend, skipBad: v['skip-bad'], quiet: v.quiet };
}

/**
 * Progress on stderr: a bar on a terminal, a line per tenth of the way otherwise. `end` closes
 * a bar line left open (before an error or the list of skipped files).
 */
function progressReporter(io: CliIo, quiet: boolean, total: number): { update(done: number): void; end(): void } {
  const start = performance.now();
  let lastTenth = -1;
  let open = false;
  return {
    update(done) {
      if (quiet) return;
      const fraction = Math.min(1, done / total);
      const seconds = (performance.now() - start) / 1000;
      const rate = `${(seconds > 0 ? done / seconds : 0).toFixed(1)} img/s`;
      if (io.tty) {
        const width = 30;
        const filled = Math.round(fraction * width);
        io.err(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} images  ${rate}   `);
        open = done < total;
        if (!open) io.err('\n');
      } else {
        const tenth = Math.floor(fraction * 10);
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          io.err(`${done}/${total} images (${Math.round(fraction * 100)}%), ${rate}\n`);
        }
      }
    },
    end() {
      if (open) io.err('\n');
      open = false;
    },
  };
}

/** A batch too large for the device, with what to change on the command line. */
function hint(err: unknown, size: number | undefined): unknown {
  if (!(err instanceof NormGpuError && err.code === 'TENSOR_TOO_LARGE')) return err;
  return new Error(`${err.message}; ${size ? 'give a smaller --size' : 'give --size N to resize the images'}`, { cause: err });
}

const fmt = (values: readonly number[]) => `[${values.map((v) => v.toFixed(4)).join(', ')}]`;

/** Run `normgpu stats`; returns the exit status. `engine` overrides --backend (tests). */
export async function runStats(argv: readonly string[], io: CliIo, engine?: Engine): Promise<number> {
  const args = parseStatsArgs(argv);
  if (args === 'help') {
    io.out(STATS_USAGE);
    return 0;
  }
  const info = await stat(args.input).catch(() => null);
  if (!info) throw new UsageError(`${args.input}: no such file or folder`);
  const source = info.isDirectory() ? await folderSource(args.input) : await idxSource(args.input);
  if (source.total === 0) {
    throw new UsageError(`${args.input}: ${info.isDirectory() ? 'no .png, .jpg or .jpeg files found' : 'no images'}`);
  }
  const { size } = args;
  const batch = args.batch ?? source.defaultBatch;
  // Output folders first: a bad --out or --json fails before any image is read.
  const outDir = resolve(args.out);
  const json = args.json === undefined ? null : resolve(args.json);
  await mkdir(outDir, { recursive: true });
  if (json) await mkdir(dirname(json), { recursive: true });

  const own = !engine;
  const e = engine ?? (await createEngine({ backend: args.backend }));
  const progress = progressReporter(io, args.quiet, source.total);
  try {
    const transform: DatasetTransform = {
      ...(size ? { resize: size, centerCrop: size } : {}),
      channelOrder: source.grayscale ? 'grayscale' : 'rgb',
    };
    if (!args.quiet) io.err(`normgpu stats: ${source.what} on ${e.backend}${size ? `, resized to ${size}x${size}` : ''}\n`);
    const stats = new DatasetStats(e, { transform });
    const skipped: SkippedFile[] = [];
    let first: { path: string; width: number; height: number } | null = null;
    // At native size every image must match the first (DatasetStats would refuse the batch, naming no file).
    const usable = (item: Loaded): Loaded => {
      if (!('image' in item) || size) return item;
      const { width, height } = item.image;
      first ??= { path: item.path, width, height };
      if (width === first.width && height === first.height) return item;
      return {
        path: item.path, failure: 'use',
        reason: `${width} x ${height} pixels, the first image (${first.path}) is ${first.width} x ${first.height}; give --size N to resize all images`,
      };
    };
    let used = 0;
    // Decode the next batch while the GPU reduces this one (a load never rejects).
    let next = source.load(0, Math.min(batch, source.total));
    for (let from = 0; from < source.total; from += batch) {
      const loaded = await next;
      const to = Math.min(from + batch, source.total);
      if (to < source.total) next = source.load(to, Math.min(to + batch, source.total));
      const images: ImageBytes[] = [];
      for (const item of loaded.map(usable)) {
        if ('image' in item) images.push(item.image);
        else if (args.skipBad) skipped.push({ path: item.path, reason: item.reason });
        else throw new Error(`cannot ${item.failure} ${item.path}: ${item.reason}`);
      }
      try {
        if (images.length > 0) await stats.add(images);
      } catch (err) {
        throw hint(err, size);
      }
      used += images.length;
      progress.update(to);
    }
    progress.end();
    if (skipped.length > 0) {
      io.err(`normgpu stats: skipped ${skipped.length} of ${source.total} files:\n${skipped.map((s) => `  ${s.path}: ${s.reason}\n`).join('')}`);
    }
    if (used === 0) throw new Error(`none of the ${source.total} files in ${args.input} could be used`);

    const result = await stats.result();
    report(io, result);
    const meanPath = join(outDir, 'mean.png');
    const stdPath = join(outDir, 'std.png');
    const { height, width } = result;
    await writeFile(meanPath, await encodePng(result.meanImage!, result.channels, height, width));
    await writeFile(stdPath, await encodePng(result.stdImage!.map((s) => 2 * s), result.channels, height, width));
    io.out(`mean image: ${meanPath}\nstd image:  ${stdPath} (std x 2)`);
    if (json) {
      const { meanImage: _m, stdImage: _s, ...summary } = result;
      await writeFile(json, JSON.stringify({ ...summary, skipped, partial: await stats.partial() }) + '\n');
      io.out(`statistics:  ${json}`);
    }
    return 0;
  } finally {
    progress.end();
    if (own) e.dispose();
  }
}

function report(io: CliIo, r: DatasetStatsResult): void {
  io.out(`images: ${r.images}, ${r.channels} channel(s), ${r.height}x${r.width}, values on [0, 1]`);
  io.out(`mean:         ${fmt(r.mean)}`);
  io.out(`std:          ${fmt(r.std)}`);
  io.out(`std (n - 1):  ${fmt(r.stdUnbiased)}`);
  io.out(`min:          ${fmt(r.min)}`);
  io.out(`max:          ${fmt(r.max)}`);
  io.out(`as a preset:  preprocess(engine, image, { mean: ${fmt(r.mean)}, std: ${fmt(r.std)} })`);
}
