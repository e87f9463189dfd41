/**
 * `normgpu stats <folder of images | IDX file> [--size N] [--json FILE] [--out DIR]`: dataset
 * statistics from the command line. Images (PNG, JPEG, found recursively) or the images of an
 * MNIST-style IDX file (gzipped or not) are decoded in batches and fed to a `DatasetStats`;
 * prints per-channel mean and std on the [0, 1] scale, writes the mean and std images as PNG
 * (std scaled by 2, its largest possible value on [0, 1] being 0.5) and, with --json, the
 * statistics and the mergeable partial.
 */
import { readdir, readFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { DatasetStats, type DatasetProgress, type DatasetStatsResult } from '../api/dataset-stats';
import { createEngine, type Engine } from '../api/engine';
import type { ImageBytes } from '../api/preprocess';
import type { DatasetTransform } from '../api/dataset-stats';
import { decodeImage, encodePng, idxImage, parseIdx } from './images';

export const STATS_USAGE = `usage: normgpu stats <folder of images | IDX file[.gz]> [options]
  --size N            resize the shorter side to N and center-crop N x N (default: native size;
                      all images must then share it)
  --json FILE         write the statistics and the mergeable partial as JSON
  --out DIR           where mean.png and std.png go (default: .)
  --batch N           images per GPU batch (default: 64 for a folder, 1024 for an IDX file)
  --backend B         webgpu, cpu or auto (default: auto)
  --quiet             no progress bar`;

export class UsageError extends Error {}

interface StatsArgs {
  input: string;
  size?: number;
  json?: string;
  out: string;
  batch?: number;
  backend: 'webgpu' | 'cpu' | 'auto';
  quiet: boolean;
}

/** Where the command writes: stdout and stderr, and whether stderr is a terminal. */
export interface CliIo {
  out(line: string): void;
  err(text: string): void;
  tty: boolean;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} needs a positive integer, got '${v}'`);
  return n;
}

export function parseStatsArgs(argv: readonly string[]): StatsArgs | 'help' {
  const args: Partial<StatsArgs> & { out: string; backend: StatsArgs['backend']; quiet: boolean } = {
    out: '.', backend: 'auto', quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') return 'help';
    else if (a === '--size') args.size = positive(a, value());
    else if (a === '--json') args.json = value();
    else if (a === '--out') args.out = value();
    else if (a === '--batch') args.batch = positive(a, value());
    else if (a === '--quiet') args.quiet = true;
    else if (a === '--backend') {
      const b = value();
      if (b !== 'webgpu' && b !== 'cpu' && b !== 'auto') throw new UsageError(`unknown backend '${b}'`);
      args.backend = b;
    } else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
    else if (args.input === undefined) args.input = a;
    else throw new UsageError(`unexpected argument '${a}'`);
  }
  if (args.input === undefined) throw new UsageError('stats needs a folder of images or an IDX file');
  return args as StatsArgs;
}

async function listImages(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) found.push(p);
    }
  };
  await walk(dir);
  return found;
}

/** A progress bar on a terminal, a line per tenth of the way otherwise. */
function progressReporter(io: CliIo, quiet: boolean): (p: DatasetProgress) => void {
  let lastTenth = -1;
  return (p) => {
    if (quiet) return;
    const total = p.total ?? p.images;
    const fraction = total > 0 ? Math.min(1, p.images / total) : 1;
    const rate = `${p.imagesPerSecond.toFixed(1)} img/s`;
    if (io.tty) {
      const width = 30;
      const done = Math.round(fraction * width);
      io.err(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${p.images}/${total} images  ${rate}   `);
      if (p.images >= total) io.err('\n');
    } else {
      const tenth = Math.floor(fraction * 10);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        io.err(`${p.images}/${total} images (${Math.round(fraction * 100)}%), ${rate}\n`);
      }
    }
  };
}

const fmt = (values: readonly number[]) => `[${values.map((v) => v.toFixed(4)).join(', ')}]`;

/** Run `normgpu stats`; returns the exit status. `engine` overrides --backend (tests). */
export async function runStats(argv: readonly string[], io: CliIo, engine?: Engine): Promise<number> {
  const args = parseStatsArgs(argv);
  if (args === 'help') {
    io.out(STATS_USAGE);
    return 0;
  }
  const input = resolve(args.input);
  const info = await stat(input).catch(() => null);
  if (!info) throw new UsageError(`${args.input}: no such file or folder`);

  // The sources, as a count and a loader of batch [from, to).
  let total: number;
  let batchAt: (from: number, to: number) => Promise<ImageBytes[]>;
  let grayscale = false;
  let what: string;
  let batch = args.batch ?? 64;
  if (info.isDirectory()) {
    const files = await listImages(input);
    if (files.length === 0) throw new UsageError(`${args.input}: no .png, .jpg or .jpeg files found`);
    total = files.length;
    what = `${total} images in ${args.input}`;
    batchAt = (from, to) => Promise.all(files.slice(from, to).map(async (f) => decodeImage(new Uint8Array(await readFile(f)), f)));
  } else {
    const idx = parseIdx(new Uint8Array(await readFile(input)));
    total = idx.count;
    grayscale = idx.channels === 1;
    what = `${total} ${idx.height}x${idx.width}x${idx.channels} images in IDX file ${args.input}`;
    batchAt = async (from, to) => Array.from({ length: to - from }, (_, k) => idxImage(idx, from + k));
    // Small images, already decoded: bigger batches, fewer round trips.
    batch = args.batch ?? 1024;
  }
  if (total === 0) throw new UsageError(`${args.input}: no images`);

  const own = !engine;
  const e = engine ?? (await createEngine({ backend: args.backend }));
  try {
    const transform: DatasetTransform = {
      ...(args.size ? { resize: args.size, centerCrop: args.size } : {}),
      channelOrder: grayscale ? 'grayscale' : 'rgb',
    };
    if (!args.quiet) io.err(`normgpu stats: ${what} on ${e.backend}${args.size ? `, resized to ${args.size}x${args.size}` : ''}\n`);
    const stats = new DatasetStats(e, { transform, total, onProgress: progressReporter(io, args.quiet) });
    // Decode the next batch while the GPU reduces this one.
    let next = batchAt(0, Math.min(batch, total));
    for (let from = 0; from < total; from += batch) {
      const images = await next;
      const to = Math.min(from + batch, total);
      if (to < total) next = batchAt(to, Math.min(to + batch, total));
      await stats.add(images);
    }
    const result = await stats.result();
    report(io, result);
    await mkdir(resolve(args.out), { recursive: true });
    const meanPath = join(resolve(args.out), 'mean.png');
    const stdPath = join(resolve(args.out), 'std.png');
    const { channels, height, width } = result;
    await writeFile(meanPath, await encodePng(result.meanImage!, channels, height, width));
    await writeFile(stdPath, await encodePng(result.stdImage!.map((s) => 2 * s), channels, height, width));
    io.out(`mean image: ${meanPath}\nstd image:  ${stdPath} (std x 2)`);
    if (args.json) {
      const json = resolve(args.json);
      await mkdir(dirname(json), { recursive: true });
      const { meanImage: _m, stdImage: _s, ...summary } = result;
      await writeFile(json, JSON.stringify({ ...summary, partial: await stats.partial() }) + '\n');
      io.out(`statistics:  ${json}`);
    }
    return 0;
  } finally {
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
