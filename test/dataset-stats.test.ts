/**
 * Dataset statistics: acceptance 2 (1,000 generated images at a 1e4 offset agree with a
 * float64 reference to 1e-6 relative on both backends; merged shards equal one pass), image
 * sources through the transform, progress, serializable partials, typed errors and the
 * `normgpu stats` CLI (folders of PNG/JPEG, IDX files). GPU work
 * runs inside validation error scopes; without an adapter the GPU tests fail.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeImage, encodePng, parseIdx } from '../src/cli/images';
import { runStats, UsageError } from '../src/cli/stats';
import {
  createEngine, DatasetStats, emptyDatasetStats, finalizeDatasetStats, mergeDatasetStats, preprocess,
  type DatasetProgress, type DatasetStatsPartial, type DatasetStatsResult, type Engine, type ImageBytes,
} from '../src/index';
import { errorCode, makeGpuEngine, maxRelative, mulberry32, normalSampler, trackGpuWork, withValidation } from './support/gpu';

const IMAGES = 1000;
const BATCH = 50;
const [C, H, W] = [3, 16, 16];
const VALUES = C * H * W;

/** Image i of the generated set: 1e4 + a per-channel level + a spatial pattern + N(0, 1) noise, [C, H, W]. */
function generatedImages(): Float32Array {
  const normal = normalSampler(mulberry32(2024));
  const data = new Float32Array(IMAGES * VALUES);
  for (let i = 0; i < IMAGES; i++) {
    for (let c = 0; c < C; c++) {
      for (let p = 0; p < H * W; p++) {
        const pattern = 0.25 * c + 0.01 * (p % W) - 0.02 * Math.floor(p / W);
        data[i * VALUES + c * H * W + p] = 1e4 + pattern + (0.5 + c * 0.25) * normal();
      }
    }
  }
  return data;
}

/** Float64 two-pass statistics of [N, C, H, W] data, straight from the definitions. */
function reference(data: Float32Array, n: number) {
  const hw = H * W;
  const count = n * hw;
  const mean = new Float64Array(C);
  const min = new Float64Array(C).fill(Infinity);
  const max = new Float64Array(C).fill(-Infinity);
  const pixelMean = new Float64Array(VALUES);
  for (let i = 0; i < n * VALUES; i++) {
    const v = i % VALUES;
    const c = Math.floor(v / hw);
    mean[c] += data[i];
    pixelMean[v] += data[i];
    min[c] = Math.min(min[c], data[i]);
    max[c] = Math.max(max[c], data[i]);
  }
  for (let c = 0; c < C; c++) mean[c] /= count;
  for (let v = 0; v < VALUES; v++) pixelMean[v] /= n;
  const m2 = new Float64Array(C);
  const pixelM2 = new Float64Array(VALUES);
  for (let i = 0; i < n * VALUES; i++) {
    const v = i % VALUES;
    m2[Math.floor(v / hw)] += (data[i] - mean[Math.floor(v / hw)]) ** 2;
    pixelM2[v] += (data[i] - pixelMean[v]) ** 2;
  }
  return {
    mean, min, max,
    std: m2.map((s) => Math.sqrt(s / count)),
    stdUnbiased: m2.map((s) => Math.sqrt(s / (count - 1))),
    meanImage: pixelMean,
    stdImage: pixelM2.map((s) => Math.sqrt(s / n)),
  };
}

let gpu: Engine;
// The other kernel family (tree merges where `gpu`, on a software adapter, merges serially).
let gpuOther: Engine;
let cpu: Engine;
let data: Float32Array;
let ref: ReturnType<typeof reference>;
beforeAll(async () => {
  gpu = await makeGpuEngine();
  gpuOther = await makeGpuEngine({ kernels: gpu.adapterInfo?.software ? 'parallel' : 'serial' });
  cpu = await createEngine({ backend: 'cpu' });
  data = generatedImages();
  ref = reference(data, IMAGES);
});
afterAll(() => {
  gpu?.dispose();
  gpuOther?.dispose();
  cpu?.dispose();
});

const run = <T>(engine: Engine, fn: () => Promise<T>): Promise<T> => (engine.backend === 'webgpu' ? withValidation(engine, fn) : fn());

/** Feed images [from, to) in batches of BATCH, as tensors (channels-last ones when asked). */
async function feed(engine: Engine, stats: DatasetStats, from: number, to: number, channelsLast = false): Promise<void> {
  for (let i = from; i < to; i += BATCH) {
    const n = Math.min(BATCH, to - i);
    let batch = data.subarray(i * VALUES, (i + n) * VALUES);
    if (channelsLast) {
      const moved = new Float32Array(batch.length);
      for (let k = 0; k < batch.length; k++) {
        const img = Math.floor(k / VALUES);
        const v = k % VALUES;
        const c = Math.floor(v / (H * W));
        moved[img * VALUES + (v % (H * W)) * C + c] = batch[k];
      }
      batch = moved;
    }
    const t = engine.tensor(batch, channelsLast ? [n, H, W, C] : [n, C, H, W], { layout: channelsLast ? 'channels-last' : 'channels-first' });
    await stats.add(t);
    t.dispose();
  }
}

function expectMatchesReference(r: DatasetStatsResult, label: string): void {
  const errors = {
    mean: maxRelative(r.mean, ref.mean),
    std: maxRelative(r.std, ref.std),
    stdUnbiased: maxRelative(r.stdUnbiased, ref.stdUnbiased),
    meanImage: maxRelative(r.meanImage!, ref.meanImage),
    stdImage: maxRelative(r.stdImage!, ref.stdImage),
  };
  console.log(`[acceptance 2 ${label}] max relative error: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
  expect(r.images).toBe(IMAGES);
  expect([r.channels, r.height, r.width]).toEqual([C, H, W]);
  for (const [k, v] of Object.entries(errors)) expect(v, k).toBeLessThan(1e-6);
  expect(r.min).toEqual(Array.from(ref.min));
  expect(r.max).toEqual(Array.from(ref.max));
}

describe('acceptance 2: 1,000 images at a 1e4 offset', () => {
  for (const name of ['cpu', 'webgpu', 'webgpu, other kernel family'] as const) {
    test(`agree with float64 to 1e-6 relative on ${name}; merged shards equal one pass`, async () => {
      const engine = name === 'cpu' ? cpu : name === 'webgpu' ? gpu : gpuOther;
      await run(engine, async () => {
        const progress: DatasetProgress[] = [];
        const whole = new DatasetStats(engine, { total: IMAGES, onProgress: (p) => progress.push(p) });
        await feed(engine, whole, 0, IMAGES);
        expectMatchesReference(await whole.result(), name);
        expect(progress.map((p) => p.images)).toEqual(Array.from({ length: IMAGES / BATCH }, (_, i) => (i + 1) * BATCH));
        expect(progress.every((p) => p.total === IMAGES && p.imagesPerSecond >= 0)).toBe(true);

        // Three shards (one channels-last), each serialized as JSON, merged in another order.
        const shards: DatasetStatsPartial[] = [];
        for (const [from, to, last] of [[0, 300, false], [300, 750, true], [750, 1000, false]] as const) {
          const s = new DatasetStats(engine);
          await feed(engine, s, from, to, last);
          shards.push(JSON.parse(JSON.stringify(await s.partial())) as DatasetStatsPartial);
        }
        const merged = mergeDatasetStats(shards[2], mergeDatasetStats(shards[0], shards[1]));
        const one = await whole.partial();
        expect(merged.images).toBe(one.images);
        expect(merged.channel.count).toBe(one.channel.count);
        // Same batches: the only difference is the order of float64 merges.
        expect(maxRelative(merged.channel.mean, one.channel.mean)).toBeLessThan(1e-12);
        expect(maxRelative(merged.channel.m2, one.channel.m2)).toBeLessThan(1e-12);
        expect(maxRelative(merged.pixel!.mean, one.pixel!.mean)).toBeLessThan(1e-12);
        expect(maxRelative(merged.pixel!.m2, one.pixel!.m2)).toBeLessThan(1e-12);
        expect(merged.channel.min).toEqual(one.channel.min);
        expect(merged.channel.max).toEqual(one.channel.max);
        expectMatchesReference(finalizeDatasetStats(merged), `${name}, merged shards`);
      });
    });
  }

  test('shards from the two backends merge into the same statistics', async () => {
    const a = new DatasetStats(gpu);
    const b = new DatasetStats(cpu);
    await withValidation(gpu, () => feed(gpu, a, 0, 500));
    await feed(cpu, b, 500, 1000);
    expectMatchesReference(finalizeDatasetStats(mergeDatasetStats(await a.partial(), await b.partial())), 'webgpu + cpu shards');
  });
});

describe('image sources', () => {
  test('images go through the transform: GPU, CPU and the stats of the preprocessed tensor agree', async () => {
    const rng = mulberry32(5);
    const images = Array.from({ length: 12 }, (_, i) => {
      const width = 20 + i * 3;
      const height = 18 + (i % 4) * 5;
      const channels = i % 3 === 0 ? 4 : 3;
      return { data: Uint8Array.from({ length: width * height * channels }, () => Math.floor(rng() * 256)), width, height, channels } as const;
    });
    const transform = { resize: 16, centerCrop: 16 } as const;
    const results: DatasetStatsResult[] = [];
    for (const engine of [cpu, gpu]) {
      results.push(await run(engine, async () => {
        const s = new DatasetStats(engine, { transform });
        await s.add(images.slice(0, 5));
        await s.add(images.slice(5));
        return s.result();
      }));
    }
    // The reference: the CPU twin's preprocessed values, statistics in float64.
    const x = await preprocess(cpu, images, { ...transform, scale: 1 / 255 }).read();
    const n = images.length;
    const mean = [0, 1, 2].map((c) => {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < 256; p++) s += x[(i * 3 + c) * 256 + p];
      return s / (n * 256);
    });
    for (const r of results) {
      expect(r.images).toBe(n);
      expect([r.channels, r.height, r.width]).toEqual([3, 16, 16]);
      expect(maxRelative(r.mean, mean)).toBeLessThan(1e-6);
      expect(r.max.every((v) => v <= 1) && r.min.every((v) => v >= 0)).toBe(true);
    }
    expect(maxRelative(results[1].std, results[0].std)).toBeLessThan(1e-5);
    expect(maxRelative(results[1].meanImage!, results[0].meanImage!)).toBeLessThan(1e-5);
  });

  test('grayscale bytes (MNIST-like) give one channel; pixelStats: false keeps no images', async () => {
    for (const engine of [cpu, gpu]) {
      await run(engine, async () => {
        const s = new DatasetStats(engine, { transform: { channelOrder: 'grayscale' }, pixelStats: false });
        await s.add([{ data: Uint8Array.from([0, 255, 255, 0]), width: 2, height: 2 }, { data: Uint8Array.from([0, 0, 0, 255]), width: 2, height: 2 }]);
        const r = await s.result();
        expect(r.channels).toBe(1);
        expect(r.mean[0]).toBeCloseTo(3 / 8, 7);
        expect(r.std[0]).toBeCloseTo(Math.sqrt(3 / 8 - (3 / 8) ** 2), 7);
        expect(r.stdUnbiased[0]).toBeCloseTo(Math.sqrt(((3 / 8 - (3 / 8) ** 2) * 8) / 7), 7);
        expect([r.min[0], r.max[0]]).toEqual([0, 1]);
        expect(r.meanImage).toBeNull();
      });
    }
  });
});

describe('partials and errors', () => {

  test('an image batch of another resolution is refused before any GPU work', async () => {
    const s = new DatasetStats(gpu);
    await s.add({ data: new Uint8Array(4 * 4 * 3).fill(7), width: 4, height: 4, channels: 3 });
    const tracker = trackGpuWork(gpu);
    const status = errorCode(() => s.add({ data: new Uint8Array(5 * 4 * 3), width: 5, height: 4, channels: 3 }));
    tracker.restore();
    expect(status).toBe('STATS_MISMATCH');
    expect(tracker.log, 'GPU calls before the error').toEqual([]);
    expect((await s.result()).images).toBe(1);
  });

  test('empty statistics are the identity of merge; mismatched partials are refused', async () => {
    const s = new DatasetStats(cpu);
    await s.add(cpu.tensor(new Float32Array(2 * 3 * 4).map((_, i) => i), [2, 3, 2, 2]));
    const p = await s.partial();
    expect(mergeDatasetStats(emptyDatasetStats(), p)).toEqual(p);
    expect(mergeDatasetStats(p, await new DatasetStats(cpu).partial())).toEqual(p);
    const other = new DatasetStats(cpu);
    await other.add(cpu.tensor(new Float32Array(2 * 3 * 9), [2, 3, 3, 3]));
    const q = await other.partial();
    expect(errorCode(() => mergeDatasetStats(p, q))).toBe('STATS_MISMATCH');
    expect(errorCode(() => mergeDatasetStats(p, { ...p, format: 'x' } as unknown as DatasetStatsPartial))).toBe('STATS_MISMATCH');
    expect(errorCode(() => mergeDatasetStats(p, { ...p, pixel: null }))).toBe('STATS_MISMATCH');
    expect(errorCode(() => s.add(cpu.tensor(new Float32Array(2 * 3 * 9), [2, 3, 3, 3])))).toBe('STATS_MISMATCH');
    expect(errorCode(() => s.add(cpu.tensor(new Float32Array(4), [2, 2])))).toBe('INVALID_SHAPE');
    expect(errorCode(() => s.add(gpu.tensor(new Float32Array(12), [1, 3, 2, 2])))).toBe('FOREIGN_TENSOR');
    expect(errorCode(() => new DatasetStats(cpu, { transform: { mean: [0] } as never }))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => s.add({ data: new Uint8Array(5), width: 2, height: 2 }))).toBe('DATA_LENGTH_MISMATCH');
  });
});

describe('CLI: normgpu stats', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (l: string) => out.push(l), err: (t: string) => err.push(t), tty: false } };
  };

  test('a folder of PNG and JPEG images: prints mean/std, writes PNGs and a mergeable JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'normgpu-stats-'));
    try {
      mkdirSync(join(dir, 'imgs', 'nested'), { recursive: true });
      const sources: ImageBytes[] = [];
      for (let i = 0; i < 5; i++) {
        const [w, h] = [24 + 5 * i, 20 + 3 * i];
        const rgba = Uint8Array.from({ length: w * h * 4 }, (_, k) => (k % 4 === 3 ? 255 : (k * 13 + i * 29) % 256));
        // PNG through the CLI's own encoder ([C, H, W] on [0, 1]); JPEG through jpeg-js.
        if (i % 2 === 0) {
          const chw = new Float32Array(3 * w * h);
          for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) chw[c * w * h + p] = rgba[p * 4 + c] / 255;
          writeFileSync(join(dir, 'imgs', `${i}.png`), await encodePng(chw, 3, h, w));
        } else {
          writeFileSync(join(dir, 'imgs', 'nested', `${i}.JPG`), jpeg.encode({ data: rgba, width: w, height: h }, 95).data);
        }
        sources.push(await decodeImage(new Uint8Array(readFileSync(i % 2 === 0 ? join(dir, 'imgs', `${i}.png`) : join(dir, 'imgs', 'nested', `${i}.JPG`)))));
      }
      writeFileSync(join(dir, 'imgs', 'notes.txt'), 'not an image');
      const { out, err, io: cliIo } = io();
      const status = await withValidation(gpu, () => runStats(
        [join(dir, 'imgs'), '--size', '16', '--json', join(dir, 'out', 's.json'), '--out', join(dir, 'out'), '--batch', '2'], cliIo, gpu,
      ));
      expect(status).toBe(0);
      expect(err.join('')).toContain('5/5 images (100%)');
      // The same statistics through the API.
      const direct = new DatasetStats(cpu, { transform: { resize: 16, centerCrop: 16 } });
      await direct.add(sources);
      const r = await direct.result();
      const json = JSON.parse(readFileSync(join(dir, 'out', 's.json'), 'utf8')) as DatasetStatsResult & { partial: DatasetStatsPartial };
      expect(json.images).toBe(5);
      expect(maxRelative(json.mean, r.mean)).toBeLessThan(1e-5);
      expect(maxRelative(json.std, r.std)).toBeLessThan(1e-5);
      expect(out.find((l) => l.startsWith('mean:'))).toBe(`mean:         [${r.mean.map((v) => v.toFixed(4)).join(', ')}]`);
      // The partial merges with another shard.
      expect(mergeDatasetStats(json.partial, json.partial).images).toBe(10);
      const mean = await decodeImage(new Uint8Array(readFileSync(join(dir, 'out', 'mean.png'))));
      expect([mean.width, mean.height]).toEqual([16, 16]);
      expect(mean.data[0]).toBe(Math.round(r.meanImage![0] * 255));
      expect(readFileSync(join(dir, 'out', 'std.png')).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an MNIST-style IDX file, gzipped or not, gives one channel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'normgpu-idx-'));
    try {
      const [n, h, w] = [30, 7, 5];
      const header = new DataView(new ArrayBuffer(16));
      [0x00000803, n, h, w].forEach((v, i) => header.setUint32(i * 4, v, false));
      const pixels = Uint8Array.from({ length: n * h * w }, (_, k) => (k * 37) % 256);
      const idx = new Uint8Array([...new Uint8Array(header.buffer), ...pixels]);
      writeFileSync(join(dir, 'raw-idx3-ubyte'), idx);
      writeFileSync(join(dir, 'gz-idx3-ubyte.gz'), gzipSync(idx));
      // The values the statistics see: bytes / 255 in float32.
      const values = Array.from(pixels, (v) => Math.fround(v / 255));
      const mean = values.reduce((a, v) => a + v, 0) / values.length;
      const m2 = values.reduce((a, v) => a + (v - mean) ** 2, 0);
      for (const name of ['raw-idx3-ubyte', 'gz-idx3-ubyte.gz']) {
        const { out, io: cliIo } = io();
        expect(await runStats([join(dir, name), '--out', dir, '--quiet', '--json', join(dir, `${name}.json`)], cliIo, cpu)).toBe(0);
        const json = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as DatasetStatsResult;
        expect([json.images, json.channels, json.height, json.width]).toEqual([n, 1, h, w]);
        expect(json.mean[0]).toBeCloseTo(mean, 12);
        expect(json.std[0]).toBeCloseTo(Math.sqrt(m2 / pixels.length), 12);
        expect(out[0]).toContain('1 channel(s)');
      }
      expect(parseIdx(idx).count).toBe(n);
      expect(() => parseIdx(idx.subarray(0, 100))).toThrow(/truncated/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('usage errors', async () => {
    const { io: cliIo } = io();
    await expect(runStats([], cliIo, cpu)).rejects.toBeInstanceOf(UsageError);
    await expect(runStats(['x', '--size', '0'], cliIo, cpu)).rejects.toThrow(/--size/);
    await expect(runStats(['/no/such/folder'], cliIo, cpu)).rejects.toThrow(/no such file/);
    await expect(runStats(['a', '--bogus'], cliIo, cpu)).rejects.toThrow(/unknown option/);
  });
});

/** Lower an engine's binding limit (the backend's `maxBindingBytes`, read by every size check). */
function limitBindings(engine: Engine, bytes: number): Engine {
  Object.defineProperty(engine.internalBackend, 'maxBindingBytes', { value: bytes });
  return engine;
}

describe('batches beyond one buffer binding', () => {
  test('image batches are reduced in parts that fit and merge into the one-pass statistics', async () => {
    const rng = mulberry32(9);
    const images: ImageBytes[] = Array.from({ length: 50 }, () => ({
      data: Uint8Array.from({ length: 8 * 8 * 3 }, () => Math.floor(rng() * 256)), width: 8, height: 8, channels: 3,
    }));
    for (const kind of ['cpu', 'webgpu'] as const) {
      const whole = kind === 'cpu' ? cpu : gpu;
      // 16 KiB bindings: 21 images of 3x8x8 floats per part (3 parts of the first batch), and the
      // 192 columns' partials (9 KiB) fit.
      const limited = limitBindings(kind === 'cpu' ? await createEngine({ backend: 'cpu' }) : await makeGpuEngine(), 16384);
      const [a, b] = await Promise.all([whole, limited].map((engine) => run(engine, async () => {
        const progress: DatasetProgress[] = [];
        const s = new DatasetStats(engine, { onProgress: (p) => progress.push(p) });
        await s.add(images.slice(0, 45));
        await s.add(images.slice(45));
        expect(progress.map((p) => p.images), `${kind}: one report per add`).toEqual([45, 50]);
        return s.result();
      })));
      expect(b.images).toBe(50);
      expect(maxRelative(b.mean, a.mean), kind).toBeLessThan(1e-6);
      expect(maxRelative(b.std, a.std), kind).toBeLessThan(1e-6);
      expect(maxRelative(b.meanImage!, a.meanImage!), kind).toBeLessThan(1e-6);
      expect(maxRelative(b.stdImage!, a.stdImage!), kind).toBeLessThan(1e-5);
      expect([b.min, b.max], kind).toEqual([a.min, a.max]);
      // One image whose per-pixel statistics cannot fit is refused before any GPU work.
      expect(errorCode(() => new DatasetStats(limited).add({ ...images[0], data: new Uint8Array(16 * 16 * 3), width: 16, height: 16 })), kind)
        .toBe('TENSOR_TOO_LARGE');
      limited.dispose();
    }
  });

  test('partials keep infinities and NaN through merges (no JSON round trip)', async () => {
    const s = new DatasetStats(cpu);
    await s.add(cpu.tensor([Infinity, 1, -Infinity, NaN], [2, 1, 1, 2]));
    const p = await s.partial();
    const merged = mergeDatasetStats(p, emptyDatasetStats());
    expect(merged).toEqual(p);
    expect([merged.channel.min[0], merged.channel.max[0]]).toEqual([-Infinity, Infinity]);
  });
});
