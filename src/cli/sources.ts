/**
 * Where `normgpu stats` gets its images: a folder (PNG and JPEG files, found recursively) or an
 * MNIST-style IDX file. Images load in batches whose promises never reject: a file that cannot
 * be read or decoded comes back as a failure naming it, so a batch decoded ahead of its use
 * can never become an unhandled rejection, and the command decides whether to stop or skip.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ImageBytes } from '../api/preprocess';
import { oneLine } from './errors';
import { decodeImage, idxImage, parseIdx } from './images';

/** One image of a batch, or why its file cannot be used (`path` as the user gave it). */
export type Loaded =
  | { path: string; image: ImageBytes }
  | { path: string; failure: 'read' | 'decode' | 'use'; reason: string };

/** A dataset: its image count and a loader of images [from, to). */
export interface Source {
  total: number;
  /** One line for the log, e.g. "12 images in photos". */
  what: string;
  grayscale: boolean;
  defaultBatch: number;
  load(from: number, to: number): Promise<Loaded[]>;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

// Files read and decoded at once: enough to overlap I/O, far below any open-file limit (a
// --batch of thousands would otherwise open thousands of files together: EMFILE).
const READ_CONCURRENCY = 8;

/** An error as one short reason: a system error's message without the path we name anyway. */
function reason(e: unknown): string {
  const system = e instanceof Error && 'syscall' in e;
  return oneLine(system ? new Error(e.message.replace(/, \w+ '.*'$/s, '')) : e);
}

/** Image files under `dir`, recursively, in name order; paths are joined onto `dir` as given. */
async function listImages(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true }).catch((e: unknown) => {
      throw new Error(`cannot list ${d}: ${reason(e)}`);
    });
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

async function loadFile(path: string): Promise<Loaded> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    return { path, failure: 'read', reason: reason(e) };
  }
  try {
    return { path, image: await decodeImage(bytes) };
  } catch (e) {
    return { path, failure: 'decode', reason: reason(e) };
  }
}

/** `f` over `items` with at most `limit` calls in flight; results in item order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The images of folder `dir` (as given on the command line); throws if it cannot be listed. */
export async function folderSource(dir: string): Promise<Source> {
  const files = await listImages(dir);
  return {
    total: files.length,
    what: `${files.length} images in ${dir}`,
    grayscale: false,
    defaultBatch: 64,
    load: (from, to) => mapLimited(files.slice(from, to), READ_CONCURRENCY, loadFile),
  };
}

/** The images of IDX file `path`; throws an error naming it if it cannot be read or parsed. */
export async function idxSource(path: string): Promise<Source> {
  const bytes = await readFile(path).catch((e: unknown) => {
    throw new Error(`cannot read ${path}: ${reason(e)}`);
  });
  let idx: ReturnType<typeof parseIdx>;
  try {
    idx = parseIdx(new Uint8Array(bytes));
  } catch (e) {
    throw new Error(`cannot decode ${path}: ${reason(e)}`);
  }
  return {
    total: idx.count,
    what: `${idx.count} ${idx.height}x${idx.width}x${idx.channels} images in IDX file ${path}`,
    grayscale: idx.channels === 1,
    // Small images, already decoded: bigger batches, fewer round trips.
    defaultBatch: 1024,
    load: async (from, to) => Array.from({ length: to - from }, (_, k) => ({ path, image: idxImage(idx, from + k) })),
  };
}
