/**
 * Dataset statistics: a folder of images (dropped or picked) or a generated sample set through
 * `DatasetStats` on the page's engine, 16 images a batch with a progress bar; then the
 * per-channel mean, std, min and max on [0, 1], the mean and std images, a "copy as preset"
 * snippet, and the same statistics on the CPU reference engine for comparison.
 */
import { DatasetStats, type DatasetProgress, type DatasetStatsResult, type ImageSource } from '../../src/index';
import sampleUrl from '../assets/sample.png';
import { rng } from '../bench/workloads';
import type { DemoContext } from './context';
import { dropZone, el, fmt } from './draw';

const BATCH = 16;
const SAMPLE_COUNT = 48;
const RESOLUTIONS = [32, 64, 128];
const DEFAULT_RESOLUTION = 64;
const CHANNELS = ['R', 'G', 'B'];
const IMAGE_NAME = /\.(png|jpe?g|gif|webp|bmp|avif|ico)$/i;

/** A set of images, decoded a batch at a time so that a large folder never sits decoded in memory. */
interface ImageSet {
  label: string;
  count: number;
  /** The images [start, start + n): those that fail to decode are left out and named in `failed`. */
  read(start: number, n: number): Promise<{ images: ImageSource[]; failed: string[]; release(): void }>;
}

/** What the tab reports after a run (read by the e2e test through `window.demo.results.dataset`). */
export interface DatasetReport {
  source: string;
  backend: string;
  resolution: number;
  /** Images merged, and files that could not be decoded. */
  images: number;
  skipped: number;
  channels: number;
  mean: number[];
  std: number[];
  stdUnbiased: number[];
  min: number[];
  max: number[];
  /** The last `onProgress` call. */
  progress: DatasetProgress;
  /** A few values of the mean and std images: [channel, y, x, mean, std]. */
  pixels: [number, number, number, number, number][];
  /** Max relative difference of mean, std (both), min and max vs the CPU reference engine; null when not run. */
  cpuMaxRelDiff: number | null;
  /** Max |Δ| of the mean and std images vs the CPU reference engine; null when not run. */
  cpuMaxImageDiff: number | null;
  /** The "copy as preset" text. */
  snippet: string;
}

/**
 * SAMPLE_COUNT random crops of the bundled sample, flipped, brightened and hue-rotated at random,
 * drawn at size x size: the transform is then the identity, so a plain loop over these bytes
 * is the exact reference of what the engine computes.
 */
async function generateSamples(size: number): Promise<ImageData[]> {
  const bitmap = await createImageBitmap(await (await fetch(sampleUrl)).blob());
  const random = rng(2024);
  const g = new OffscreenCanvas(size, size).getContext('2d', { willReadFrequently: true })!;
  const images: ImageData[] = [];
  for (let i = 0; i < SAMPLE_COUNT; i++) {
    const side = Math.min(bitmap.width, bitmap.height) * (0.3 + 0.7 * random());
    const sx = random() * (bitmap.width - side);
    const sy = random() * (bitmap.height - side);
    const flip = random() < 0.5;
    g.setTransform(flip ? -1 : 1, 0, 0, 1, flip ? size : 0, 0);
    g.filter = `brightness(${(0.55 + 0.9 * random()).toFixed(2)}) hue-rotate(${Math.floor(360 * random())}deg) saturate(${(0.4 + 1.2 * random()).toFixed(2)})`;
    g.drawImage(bitmap, sx, sy, side, side, 0, 0, size, size);
    images.push(g.getImageData(0, 0, size, size));
  }
  bitmap.close();
  return images;
}

function sampleSet(images: ImageData[]): ImageSet {
  return {
    label: `generated sample set (${images.length} crops of sample.png)`,
    count: images.length,
    read: async (start, n) => ({ images: images.slice(start, start + n), failed: [], release: () => {} }),
  };
}

interface NamedFile {
  file: File;
  path: string;
}

function fileSet(files: NamedFile[], label: string): ImageSet {
  return {
    label,
    count: files.length,
    async read(start, n) {
      const slice = files.slice(start, start + n);
      const decoded = await Promise.allSettled(slice.map((f) => createImageBitmap(f.file)));
      const images: ImageBitmap[] = [];
      const failed: string[] = [];
      decoded.forEach((d, i) => (d.status === 'fulfilled' ? images.push(d.value) : failed.push(slice[i].path)));
      return { images, failed, release: () => images.forEach((b) => b.close()) };
    },
  };
}

/** Every file under a dropped entry, directories walked recursively. */
async function walk(entry: FileSystemEntry): Promise<NamedFile[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
    return [{ file, path: entry.fullPath.replace(/^\//, '') }];
  }
  if (!entry.isDirectory) return [];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries hands a directory out in chunks (100 in Chromium) until it returns none.
  for (;;) {
    const chunk = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (chunk.length === 0) break;
    children.push(...chunk);
  }
  return (await Promise.all(children.map(walk))).flat();
}

/** Image files only (by type, or by name where the browser gives no type), in path order. */
function imageFiles(files: NamedFile[]): { kept: NamedFile[]; ignored: number } {
  const kept = files.filter((f) => f.file.type.startsWith('image/') || (!f.file.type && IMAGE_NAME.test(f.path)));
  kept.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { kept, ignored: files.length - kept.length };
}

/** The [C, H, W] image as RGB pixels, each value times `k` (then clamped to 0..255). */
function planesImage(values: Float32Array, size: number, k: number): HTMLCanvasElement {
  const c = el('canvas');
  c.width = size;
  c.height = size;
  const g = c.getContext('2d')!;
  const img = g.createImageData(size, size);
  const plane = size * size;
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < 3; ch++) img.data[i * 4 + ch] = Math.round(values[ch * plane + i] * k);
    img.data[i * 4 + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  return c;
}

/** |a − b| / |b|, 0 where both are equal (0 included). */
function relDiff(a: readonly number[], b: readonly number[]): number {
  return Math.max(0, ...a.map((v, i) => (v === b[i] ? 0 : Math.abs(v - b[i]) / Math.abs(b[i]))));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Bytes to base64 in chunks (String.fromCharCode takes a bounded number of arguments). */
function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const preset = (r: DatasetStatsResult) => {
  const list = (v: number[]) => `[${v.map((x) => x.toFixed(4)).join(', ')}]`;
  return `preprocess(engine, image, { mean: ${list(r.mean)}, std: ${list(r.std)} })`;
};

/**
 * Mount the Dataset statistics tab in `root`. Each run reports a `DatasetReport` as
 * `ctx.report('dataset', ...)`; the generated images are exposed as the `datasetImages` hook.
 */
export function mountDataset(root: HTMLElement, ctx: DemoContext): void {
  const resolutionSel = el('select', { 'data-testid': 'ds-resolution' });
  for (const s of RESOLUTIONS) resolutionSel.append(el('option', { value: String(s), text: `${s} × ${s}` }));
  resolutionSel.value = String(DEFAULT_RESOLUTION);
  const filesInput = el('input', { type: 'file', accept: 'image/*', multiple: '' });
  const folderInput = el('input', { type: 'file', multiple: '', webkitdirectory: '' });
  const sampleBtn = el('button', { class: 'primary', text: 'Use generated sample set', 'data-testid': 'ds-generate' });
  const drop = el('div', { class: 'dropzone', text: 'Drop a folder of images (or images) here' });
  const cpuCheck = el('input', { type: 'checkbox', 'data-testid': 'ds-cpu-check' });
  cpuCheck.checked = ctx.engine.backend !== 'cpu';
  const cpuLabel = el('label', { class: 'inline' }, cpuCheck, 'also on the CPU reference engine (float64), to compare');
  // On the CPU backend the page's engine is the reference itself.
  cpuLabel.hidden = ctx.engine.backend === 'cpu';
  const bar = el('div');
  const progress = el('div', { class: 'progress' }, bar);
  const progressText = el('div', { class: 'small muted', 'data-testid': 'ds-progress', text: 'No images yet.' });
  const status = el('div', { class: 'small muted', 'data-testid': 'ds-status' });
  const stats = el('div', { class: 'scroll' });
  const figures = el('div', { class: 'figures', 'data-testid': 'ds-figures' });
  const details = el('div');
  const copyBtn = el('button', { class: 'secondary', text: 'Copy as preset', 'data-testid': 'ds-copy', disabled: '' });
  const copyStatus = el('span', { class: 'small muted', 'data-testid': 'ds-copy-status' });
  const fallback = el('textarea', { class: 'mono snippet', rows: '2', readonly: '', 'data-testid': 'ds-snippet', hidden: '' });

  root.append(
    el('div', { class: 'card' },
      el('h2', { text: 'Dataset statistics' }),
      el('p', { class: 'intro', text: `The per-channel mean and std of a folder of images, for a model's Normalize step: each image is resized (shorter side) and center-cropped to the chosen resolution, scaled to [0, 1], and merged 16 at a time by normgpu's DatasetStats ${ctx.engine.backend === 'webgpu' ? 'on the GPU (float32 Welford per batch, merged on the host in float64)' : 'on the CPU backend in float64 (no WebGPU here)'}. The images never leave this page.` }),
      el('div', { class: 'controls', style: 'margin-top:12px' },
        el('label', {}, 'images', el('div', { class: 'row' }, sampleBtn)),
        el('label', {}, 'files', filesInput),
        el('label', {}, 'a folder', folderInput),
        drop,
        el('label', {}, 'resolution', resolutionSel),
        cpuLabel,
      ),
      el('div', { style: 'margin-top:14px' }, progress),
      el('div', { style: 'margin-top:6px' }, progressText),
      el('div', { style: 'margin-top:4px' }, status),
    ),
    el('div', { class: 'card' }, el('h3', { text: 'Per-channel statistics on [0, 1]' }), el('div', { style: 'margin-top:10px' }, stats),
      el('div', { class: 'row', style: 'margin-top:12px; align-items:center' }, copyBtn, copyStatus), fallback, details),
    el('div', { class: 'card' }, el('h3', { text: 'Mean and std images' }), el('div', { style: 'margin-top:10px' }, figures)),
  );

  let busy = false;
  let again: (() => Promise<ImageSet>) | null = null;
  let snippet = '';
  let samples: ImageData[] = [];
  // The e2e test checks the page's numbers against the generated images' own bytes.
  ctx.expose('datasetImages', () => {
    const rgba = new Uint8Array(samples.reduce((n, s) => n + s.data.length, 0));
    let at = 0;
    for (const s of samples) {
      rgba.set(s.data, at);
      at += s.data.length;
    }
    return { width: samples[0]?.width ?? 0, height: samples[0]?.height ?? 0, count: samples.length, rgba: base64(rgba) };
  });

  const setBusy = (b: boolean) => {
    busy = b;
    for (const c of [sampleBtn, filesInput, folderInput, resolutionSel]) c.disabled = b;
  };

  async function run(make: () => Promise<ImageSet>): Promise<void> {
    if (busy) {
      status.textContent = 'Still computing: wait for this run to finish.';
      return;
    }
    setBusy(true);
    again = make;
    try {
      await compute(await make(), Number(resolutionSel.value));
    } catch (e) {
      status.innerHTML = '';
      status.append(el('span', { class: 'err', text: `Error: ${e instanceof Error ? e.message : String(e)}` }));
      console.error(e);
    } finally {
      setBusy(false);
    }
  }

  async function compute(set: ImageSet, size: number): Promise<void> {
    const transform = { resize: size, centerCrop: size };
    let skipped = 0;
    let last: DatasetProgress = { images: 0, total: set.count, elapsedMs: 0, imagesPerSecond: 0 };
    const show = () => {
      bar.style.width = `${set.count ? (100 * (last.images + skipped)) / set.count : 100}%`;
      progressText.textContent = `${last.images} / ${set.count} images · ${last.imagesPerSecond.toFixed(0)} images/s${skipped ? ` · ${skipped} unreadable, skipped` : ''}`;
      progressText.dataset.done = String(last.images);
      progressText.dataset.total = String(set.count);
    };
    const stats = new DatasetStats(ctx.engine, { transform, total: set.count, onProgress: (p) => { last = p; show(); } });
    const ref = cpuCheck.checked && ctx.engine.backend !== 'cpu' ? new DatasetStats(ctx.cpu, { transform }) : null;
    show();
    status.textContent = `Computing: ${set.label} at ${size} × ${size}…`;
    const failed: string[] = [];
    // One batch is decoded while the previous one is reduced.
    let next: ReturnType<ImageSet['read']> | null = set.count ? set.read(0, Math.min(BATCH, set.count)) : null;
    try {
      for (let start = 0; next; start += BATCH) {
        const batch = await next;
        const following = start + BATCH;
        next = following < set.count ? set.read(following, Math.min(BATCH, set.count - following)) : null;
        try {
          skipped += batch.failed.length;
          failed.push(...batch.failed);
          if (batch.images.length) await Promise.all([stats.add(batch.images), ref?.add(batch.images)]);
          else show();
        } finally {
          batch.release();
        }
      }
    } finally {
      void next?.then((b) => b.release());
    }
    const r = await stats.result();
    if (r.images === 0) {
      status.textContent = `No readable images in ${set.label}.`;
      return;
    }
    const cpu = ref ? await ref.result() : null;
    render(set, size, r, cpu, last, skipped, failed);
  }

  function render(set: ImageSet, size: number, r: DatasetStatsResult, cpu: DatasetStatsResult | null, last: DatasetProgress, skipped: number, failed: string[]) {
    const table = el('table', { class: 'data', 'data-testid': 'ds-stats' });
    table.append(el('tr', {}, ...['channel', 'mean', 'std (biased, ÷n)', 'std (unbiased, ÷(n−1))', 'min', 'max'].map((h) => el('th', { text: h }))));
    const td = (key: string, v: number) => el('td', { text: fmt(v, 6), 'data-stat': key, 'data-value': String(v) });
    for (let ch = 0; ch < r.channels; ch++) {
      table.append(el('tr', { 'data-channel': String(ch) }, el('td', { text: CHANNELS[ch] ?? String(ch) }),
        td('mean', r.mean[ch]), td('std', r.std[ch]), td('stdUnbiased', r.stdUnbiased[ch]), td('min', r.min[ch]), td('max', r.max[ch])));
    }
    stats.innerHTML = '';
    stats.append(table);

    const meanImage = r.meanImage!;
    const stdImage = r.stdImage!;
    const topStd = stdImage.reduce((m, v) => Math.max(m, v), 0);
    const k = topStd > 0 ? 255 / topStd : 0;
    const side = Math.max(192, size * 2);
    const figure = (c: HTMLCanvasElement, testid: string, title: string, caption: string) => {
      c.setAttribute('data-testid', testid);
      c.style.width = c.style.height = `${side}px`;
      return el('figure', { class: 'pixelated', style: `max-width:${side}px` }, c, el('figcaption', {}, el('b', { text: title }), ` ${caption}`));
    };
    figures.innerHTML = '';
    figures.append(
      figure(planesImage(meanImage, size, 255), 'ds-mean-image', 'Mean image', `of ${r.images} images at ${size} × ${size}, 0 black, 1 white`),
      figure(planesImage(stdImage, size, k), 'ds-std-image', 'Std image', `(biased, per value), scaled so the largest is white (max ${fmt(topStd)})`),
    );

    let cpuMaxRelDiff: number | null = null;
    let cpuMaxImageDiff: number | null = null;
    if (cpu) {
      cpuMaxRelDiff = Math.max(...(['mean', 'std', 'stdUnbiased', 'min', 'max'] as const).map((key) => relDiff(r[key], cpu[key])));
      cpuMaxImageDiff = Math.max(maxAbsDiff(meanImage, cpu.meanImage!), maxAbsDiff(stdImage, cpu.stdImage!));
    }
    snippet = preset(r);
    copyBtn.disabled = false;
    copyStatus.textContent = '';
    fallback.hidden = true;

    details.innerHTML = '';
    details.append(el('dl', { class: 'kv', style: 'margin-top:12px' },
      el('dt', { text: 'images' }), el('dd', { text: `${r.images} from ${set.label}${skipped ? `; ${skipped} unreadable, skipped (${failed.slice(0, 3).join(', ')}${failed.length > 3 ? ', …' : ''})` : ''}` }),
      el('dt', { text: 'values per channel' }), el('dd', { text: `${(r.images * r.height * r.width).toLocaleString('en-US')} (${r.height} × ${r.width} after resize ${size} and center crop ${size})` }),
      el('dt', { text: 'time' }), el('dd', { text: `${(last.elapsedMs / 1000).toFixed(2)} s on ${ctx.engine.backend} from the first batch queued, ${last.imagesPerSecond.toFixed(0)} images/s (later batches' decoding${cpu ? ' and the CPU reference run' : ''} included)` }),
      el('dt', { text: 'vs CPU reference' }),
      cpuMaxRelDiff === null || cpuMaxImageDiff === null
        ? el('dd', { class: 'muted', text: ctx.engine.backend === 'cpu' ? 'the page runs on the CPU reference engine itself' : 'not run' })
        : el('dd', {}, el('span', { class: cpuMaxRelDiff <= 1e-5 ? 'ok' : 'err', 'data-testid': 'ds-cpu-diff', 'data-value': String(cpuMaxRelDiff), text: `max relative difference ${cpuMaxRelDiff.toExponential(2)}` }),
          ` over the channel statistics; mean and std images max |Δ| = ${cpuMaxImageDiff.toExponential(2)}`),
    ));

    const at = (ch: number, y: number, x: number): [number, number, number, number, number] => {
      const i = ch * r.height * r.width + y * r.width + x;
      return [ch, y, x, meanImage[i], stdImage[i]];
    };
    const h = r.height;
    const w = r.width;
    const report: DatasetReport = {
      source: set.label, backend: ctx.engine.backend, resolution: size, images: r.images, skipped, channels: r.channels,
      mean: r.mean, std: r.std, stdUnbiased: r.stdUnbiased, min: r.min, max: r.max, progress: last,
      pixels: [at(0, 0, 0), at(1, Math.floor(h / 2), Math.floor(w / 2)), at(2, h - 1, w - 1), at(0, Math.floor(h / 3), Math.floor((2 * w) / 3))],
      cpuMaxRelDiff, cpuMaxImageDiff, snippet,
    };
    status.textContent = `Done: ${r.images} images at ${size} × ${size}.`;
    ctx.report('dataset', report);
  }

  copyBtn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(snippet);
      fallback.hidden = true;
      copyStatus.textContent = 'Copied to the clipboard.';
      copyStatus.dataset.state = 'copied';
    } catch (e) {
      // Clipboard access is refused without focus or permission: show the text to copy by hand.
      fallback.value = snippet;
      fallback.hidden = false;
      fallback.select();
      copyStatus.textContent = `The clipboard refused (${e instanceof Error ? e.message : String(e)}): copy the text below.`;
      copyStatus.dataset.state = 'fallback';
    }
  });

  const runFiles = (files: NamedFile[], what: string) => {
    const { kept, ignored } = imageFiles(files);
    void run(async () => fileSet(kept, `${what}: ${kept.length} images${ignored ? ` (${ignored} other files ignored)` : ''}`));
  };
  sampleBtn.addEventListener('click', () => void run(async () => {
    samples = await generateSamples(Number(resolutionSel.value));
    return sampleSet(samples);
  }));
  for (const input of [filesInput, folderInput]) {
    input.addEventListener('change', () => {
      const files = Array.from(input.files ?? [], (file) => ({ file, path: file.webkitRelativePath || file.name }));
      input.value = '';
      if (files.length) runFiles(files, input === folderInput ? 'picked folder' : 'picked files');
    });
  }
  dropZone(drop, (data) => {
    const items = data.items;
    // Entries must be taken during the event: the DataTransfer is emptied once it returns.
    const entries: FileSystemEntry[] = [];
    const loose: NamedFile[] = [];
    for (let i = 0; i < items.length; i++) {
      if (items[i].kind !== 'file') continue;
      const entry = items[i].webkitGetAsEntry();
      const file = entry ? null : items[i].getAsFile();
      if (entry) entries.push(entry);
      else if (file) loose.push({ file, path: file.name });
    }
    void (async () => {
      try {
        runFiles([...loose, ...(await Promise.all(entries.map(walk))).flat()], 'dropped');
      } catch (err) {
        status.textContent = `Could not read the dropped items: ${err instanceof Error ? err.message : String(err)}`;
      }
    })();
  });
  // A new resolution recomputes the last set (a generated set is drawn again at that size).
  resolutionSel.addEventListener('change', () => {
    if (again) void run(again);
  });
}
