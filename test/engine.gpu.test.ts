/**
 * API behaviours of the WebGPU backend: wrapping user buffers, handing out output buffers,
 * memory and pipeline-cache bounds, `explain`, engine creation with its own or a user's
 * device; and the basic identity of the CPU backend. Numeric checks use the accuracy bar's
 * 1e-5 max scaled error against the float64 CPU backend.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { create } from 'webgpu';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, NormGpuError, type Engine, type Layout, type OpName, type Tensor } from '../src/index';
import { BufferUsage } from '../src/webgpu-flags';
import { cachedPipelineCount } from '../src/gpu/pipelines';
import { DISTRIBUTIONS, generate, makeGpuEngine, scaledError, sizeOf, trackGpuWork, withValidation, worstElement } from './support/gpu';

const TOL = 1e-5;
const STORAGE_BUFFER = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

let gpu: Engine;
let serial: Engine;
let cpu: Engine;

/**
 * Engines disposed mid-file stay reachable here: in Node each engine holds the only reference
 * to its Dawn instance, and once a disposed engine is garbage-collected the next GPU wait of
 * any other engine can crash or hang the process (reported; the last test of this file checks
 * it directly).
 */
const retired: Engine[] = [];
function retire(engine: Engine): void {
  retired.push(engine);
  engine.dispose();
}

beforeAll(async () => {
  gpu = await makeGpuEngine({ kernels: 'parallel' });
  serial = await makeGpuEngine({ kernels: 'serial' });
  cpu = await createEngine({ backend: 'cpu' });
});

afterAll(() => {
  gpu?.dispose();
  serial?.dispose();
  cpu?.dispose();
});

/** Read a GPUBuffer the way a user would: their own encoder, copy, map. */
async function readBuffer(device: GPUDevice, buffer: GPUBuffer, floats: number): Promise<Float32Array> {
  const staging = device.createBuffer({ size: floats * 4, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, floats * 4);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(BufferUsage.MAP_READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return out;
}

function userBuffer(device: GPUDevice, data: Float32Array, usage = STORAGE_BUFFER, extraBytes = 0): GPUBuffer {
  const buffer = device.createBuffer({ size: data.byteLength + extraBytes, usage });
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

async function cpuLayerNorm(data: Float32Array, shape: number[], normalizedShape: number[]): Promise<Float32Array> {
  const x = cpu.tensor(data, shape);
  const y = cpu.layerNorm(x, { normalizedShape });
  const out = await y.read();
  x.dispose();
  y.dispose();
  return out;
}

function expectClose(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(scaledError(actual, expected), `${what}: ${worstElement(actual, expected)}`).toBeLessThanOrEqual(TOL);
}

const dispose = (...ts: Tensor[]) => { for (const t of ts) t.dispose(); };

describe('fromGPUBuffer', () => {
  test('wraps a user buffer without a copy, and dispose leaves it to its owner', async () => {
    const device = gpu.device!;
    await withValidation(gpu, async () => {
      const shape = [2, 3, 8];
      const first = generate('normal', sizeOf(shape), 11);
      const buffer = userBuffer(device, first, STORAGE_BUFFER, 64); // larger than needed is fine
      const memory = gpu.memory();
      const tracker = trackGpuWork(gpu);
      const x = gpu.fromGPUBuffer(buffer, shape);
      tracker.restore();
      expect(tracker.log, 'wrapping makes no GPU calls (no copy)').toEqual([]);
      expect(gpu.memory(), 'wrapping takes nothing from the pool').toEqual({ ...memory, liveTensors: memory.liveTensors + 1 });
      expect(x.buffer).toBe(buffer);
      expect(x.shape).toEqual(shape);
      expect(x.layout).toBe('channels-first');

      const y1 = gpu.layerNorm(x, { normalizedShape: [8] });
      expectClose(await y1.read(), await cpuLayerNorm(first, shape, [8]), 'output of a wrapped input');

      // No copy was taken: the tensor sees what the owner writes into the buffer later.
      const second = generate('offset', sizeOf(shape), 12);
      device.queue.writeBuffer(buffer, 0, second.buffer as ArrayBuffer, second.byteOffset, second.byteLength);
      expect(await x.read()).toEqual(second);
      const y2 = gpu.layerNorm(x, { normalizedShape: [8] });
      expectClose(await y2.read(), await cpuLayerNorm(second, shape, [8]), 'output after the owner rewrote the buffer');

      const beforeDispose = gpu.memory();
      x.dispose();
      expect(x.disposed).toBe(true);
      expect(gpu.memory(), 'a wrapped buffer never enters the pool').toEqual({ ...beforeDispose, liveTensors: beforeDispose.liveTensors - 1 });
      // Still the owner's and alive: readable directly, and wrappable again.
      expect(await readBuffer(device, buffer, second.length)).toEqual(second);
      const again = gpu.fromGPUBuffer(buffer, [6, 8], { layout: 'channels-last' });
      expect(again.layout).toBe('channels-last');
      expect(await again.read()).toEqual(second);
      again.dispose();
      dispose(y1, y2);
      buffer.destroy();
    });
  });

  test('checks the usage and size of the user buffer', async () => {
    const device = gpu.device!;
    const data = new Float32Array(16);
    const bad = [
      { usage: BufferUsage.COPY_SRC | BufferUsage.COPY_DST, shape: [16], code: 'INVALID_ARGUMENT' },
      { usage: BufferUsage.STORAGE | BufferUsage.COPY_DST, shape: [16], code: 'INVALID_ARGUMENT' },
      { usage: STORAGE_BUFFER, shape: [17], code: 'DATA_LENGTH_MISMATCH' },
    ];
    await withValidation(gpu, () => {
      for (const b of bad) {
        const buffer = userBuffer(device, data, b.usage);
        let thrown: unknown;
        try {
          gpu.fromGPUBuffer(buffer, b.shape);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(NormGpuError);
        expect((thrown as NormGpuError).code).toBe(b.code);
        buffer.destroy();
      }
      // STORAGE | COPY_SRC is enough (no COPY_DST needed).
      const minimal = device.createBuffer({ size: 64, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
      gpu.fromGPUBuffer(minimal, [16]).dispose();
      minimal.destroy();
    });
  });
});

describe('output buffers', () => {
  test('tensor.buffer is a GPUBuffer the caller can copy from and feed to other GPU work', async () => {
    const device = gpu.device!;
    await withValidation(gpu, async () => {
      const shape = [2, 6, 5, 7];
      const data = generate('normal', sizeOf(shape), 21);
      const x = gpu.tensor(data, shape);
      const y = gpu.groupNorm(x, { numGroups: 3 });
      const buffer = y.buffer;
      expect(buffer.size).toBeGreaterThanOrEqual(y.size * 4);
      expect(buffer.usage & BufferUsage.STORAGE).toBeTruthy();
      expect(buffer.usage & BufferUsage.COPY_SRC).toBeTruthy();
      const viaUser = await readBuffer(device, buffer, y.size);
      expect(viaUser).toEqual(await y.read());

      // Another engine on the same device (a second library, say) takes it as its input.
      const sibling = await createEngine({ device });
      const wrapped = sibling.fromGPUBuffer(buffer, shape);
      const z = sibling.instanceNorm(wrapped);
      const zc = cpu.instanceNorm(cpu.tensor(viaUser, shape));
      expectClose(await z.read(), await zc.read(), 'instanceNorm of a groupNorm output buffer');
      dispose(z, wrapped);
      retire(sibling);
      expect(await y.read(), "the sibling's dispose left our buffer alone").toEqual(viaUser);
      dispose(x, y);
    });
  });

  test('a released input buffer is reused only after the queued work that reads it', async () => {
    await withValidation(gpu, async () => {
      const shape = [4, 64];
      const a = generate('normal', 256, 31);
      const b = generate('offset', 256, 32);
      const xa = gpu.tensor(a, shape);
      const ya = gpu.layerNorm(xa, { normalizedShape: [64] });
      xa.dispose();
      const xb = gpu.tensor(b, shape); // same size class: takes xa's buffer from the pool
      const yb = gpu.layerNorm(xb, { normalizedShape: [64] });
      expectClose(await ya.read(), await cpuLayerNorm(a, shape, [64]), 'first output');
      expectClose(await yb.read(), await cpuLayerNorm(b, shape, [64]), 'second output');
      dispose(xb, ya, yb);
    });
  });
});

describe('memory', () => {
  test('50 iterations of mixed ops with every tensor disposed: live bytes return, the pool stops growing', async () => {
    const device = gpu.device!;
    const nchw = [2, 6, 5, 7];
    const nhwc = [2, 5, 7, 6];
    const user = userBuffer(device, generate('normal', 64, 41));
    const start = gpu.memory();
    const pooled: number[] = [];
    await withValidation(gpu, async () => {
      for (let it = 0; it < 50; it++) {
        const x = gpu.tensor(generate('normal', sizeOf(nchw), 100 + it), nchw);
        const xl = gpu.tensor(generate('pixels', sizeOf(nhwc), 200 + it), nhwc, { layout: 'channels-last' });
        const w = gpu.tensor(new Float32Array(6).fill(1.5), [6]);
        const rm = gpu.tensor(new Float32Array(6), [6]);
        const rv = gpu.tensor(new Float32Array(6).fill(1), [6]);
        const wrapped = gpu.fromGPUBuffer(user, [4, 16]);
        const m = gpu.moments(x, { axes: [0, 2, 3] });
        const outs = [
          gpu.batchNorm(x, { training: true, runningMean: rm, runningVar: rv, weight: w, bias: new Float32Array(6) }),
          gpu.batchNorm(xl, { runningMean: new Float32Array(6), runningVar: [1, 2, 3, 4, 5, 6], weight: w }),
          gpu.layerNorm(x, { normalizedShape: [5, 7], weight: new Float32Array(35).fill(2) }),
          gpu.rmsNorm(xl, { normalizedShape: [6], weight: w }),
          gpu.instanceNorm(x),
          gpu.groupNorm(xl, { numGroups: 3, bias: [1, 2, 3, 4, 5, 6] }),
          gpu.layerNorm(wrapped, { normalizedShape: [16] }),
          m.mean,
          m.variance,
        ];
        // Read a rotating subset, so staging buffers take part too.
        await outs[it % outs.length].read();
        await rm.read();
        dispose(x, xl, w, rm, rv, wrapped, ...outs);
        const now = gpu.memory();
        expect(now.liveBytes, `live bytes after iteration ${it}`).toBe(start.liveBytes);
        pooled.push(now.pooledBytes);
      }
    });
    user.destroy();
    // Everything an iteration needs is pooled after the first one; later ones only reuse it.
    expect(pooled, `pooled bytes after each iteration: ${pooled.join(', ')}`).toEqual(pooled.map(() => pooled[0]));
  });

  test('CPU engine reports no GPU memory', () => {
    expect(cpu.memory()).toMatchObject({ liveBytes: 0, pooledBytes: 0 });
  });
});

describe('pipeline cache', () => {
  interface Series {
    name: string;
    engine: () => Engine;
    op: OpName;
    layout: Layout;
    shapes: number[][];
    options: (shape: number[]) => Record<string, unknown>;
  }
  const series: Series[] = [
    {
      name: 'batchNorm training NCHW, parallel (rows reduce)', engine: () => gpu, op: 'batchNorm', layout: 'channels-first',
      shapes: [[2, 3, 8, 8], [3, 5, 8, 12], [4, 6, 16, 8], [2, 7, 10, 12], [5, 2, 12, 12]],
      options: (s) => ({ training: true, weight: new Float32Array(s[1]).fill(1) }),
    },
    {
      // Same spatial size (so the same power-of-two tiles), different N and C.
      name: 'batchNorm training NCHW, parallel, one spatial size', engine: () => gpu, op: 'batchNorm', layout: 'channels-first',
      shapes: [[2, 3, 8, 8], [3, 5, 8, 8], [4, 6, 4, 16], [5, 7, 2, 32], [2, 9, 16, 4]],
      options: (s) => ({ training: true, weight: new Float32Array(s[1]).fill(1) }),
    },
    {
      name: 'batchNorm training NHWC, parallel (columns reduce)', engine: () => gpu, op: 'batchNorm', layout: 'channels-last',
      shapes: [[2, 4, 4, 3], [3, 5, 5, 5], [2, 6, 3, 7], [4, 2, 9, 9], [2, 8, 8, 11]],
      options: (s) => ({ training: true, bias: new Float32Array(s[3]) }),
    },
    {
      name: 'layerNorm, serial', engine: () => serial, op: 'layerNorm', layout: 'channels-first',
      shapes: [[2, 8], [3, 16], [5, 32], [7, 64], [11, 128]],
      options: (s) => ({ normalizedShape: [s[1]] }),
    },
    {
      // Odd spatial sizes: runs of 4k floats take the vec4 entry instead.
      name: 'moments [0, 2, 3], serial', engine: () => serial, op: 'moments', layout: 'channels-first',
      shapes: [[2, 3, 5, 5], [3, 4, 5, 7], [4, 5, 7, 7], [5, 6, 7, 9], [6, 7, 9, 9]],
      options: () => ({ axes: [0, 2, 3] }),
    },
    {
      name: 'moments [0, 2, 3], serial vec4', engine: () => serial, op: 'moments', layout: 'channels-first',
      shapes: [[2, 3, 4, 5], [3, 4, 4, 6], [4, 5, 8, 7], [5, 6, 4, 9], [6, 7, 8, 8]],
      options: () => ({ axes: [0, 2, 3] }),
    },
  ];

  test.each(series.map((s) => [s.name, s] as const))('the same variant at 5 shapes adds no pipelines: %s', async (_name, s) => {
    const engine = s.engine();
    const device = engine.device!;
    const counts: number[] = [];
    const signatures: string[] = [];
    const created: string[][] = [];
    await withValidation(engine, async () => {
      for (const shape of s.shapes) {
        const tracker = trackGpuWork(engine);
        const x = engine.tensor(generate('normal', sizeOf(shape), 51), shape, { layout: s.layout });
        const options = s.options(shape);
        signatures.push(engine.explain(s.op, x, options).kernels.map((k) => `${k.stage}:${k.variant}`).join(' '));
        const run = engine[s.op].bind(engine) as (x: Tensor, o: object) => Tensor | { mean: Tensor; variance: Tensor };
        const out = run(x, options);
        const outs = 'mean' in out ? [out.mean, out.variance] : [out];
        for (const t of outs) await t.read();
        dispose(x, ...outs);
        tracker.restore();
        created.push(tracker.log.filter((l) => l.startsWith('device.createComputePipeline')));
        counts.push(cachedPipelineCount(device));
      }
    });
    // The series is meaningful only if every shape runs the same kernels.
    expect(new Set(signatures).size, signatures.join('\n')).toBe(1);
    expect(counts[0]).toBeGreaterThan(0);
    const added = created.slice(1).map((c, i) => `${s.shapes[i + 1]}: ${c.join(', ') || '-'}`).join('\n');
    expect(counts, `pipelines cached after each shape (${signatures[0]}); created after the first shape:\n${added}`)
      .toEqual(counts.map(() => counts[0]));
  });
});

describe('a few large groups (LayerNorm / RMSNorm over [C, H, W])', () => {
  // On software adapters these take the staged path with reduce_stats_serial's vec4 entry
  // (chunks of each group, block sums); elsewhere whatever the planner picks. Either way the
  // result matches the float64 CPU backend on every input distribution, and non-finite samples
  // give what PyTorch gives.
  const shapes = [[2, 16, 16, 16], [3, 8, 24, 24]];
  test.each(shapes.flatMap((shape) => DISTRIBUTIONS.flatMap((dist) => (['layerNorm', 'rmsNorm'] as const).map((op) => [op, dist, shape] as const))))(
    '%s, %s, %j', async (op, dist, shape) => {
      const data = generate(dist, sizeOf(shape), 71);
      if (dist === 'mixed') {
        data[5000] = Infinity; // group 1: mean inf (LayerNorm: NaN outputs), RMSNorm: rstd 0
        data[100] = NaN;
      }
      const options = { normalizedShape: shape.slice(1) };
      const run = async (engine: Engine) => {
        const x = engine.tensor(data, shape);
        const y = engine[op](x, options);
        const out = await y.read();
        dispose(x, y);
        return out;
      };
      const actual = await withValidation(gpu, () => run(gpu));
      const expected = await run(cpu);
      const nonFinite = expected.map((v, i) => (Number.isFinite(v) ? 0 : Object.is(actual[i], v) || (Number.isNaN(v) && Number.isNaN(actual[i])) ? 0 : 1));
      expect(nonFinite.reduce((a, b) => a + b, 0), 'non-finite outputs differ').toBe(0);
      const finite = (a: Float32Array) => a.map((v, i) => (Number.isFinite(expected[i]) ? v : 0));
      expectClose(finite(actual), finite(expected), `${op} ${dist} ${shape}`);
      const x = gpu.tensor(data, shape);
      const reduce = gpu.explain(op, x, options).kernels.find((k) => k.stage === 'reduceStats');
      x.dispose();
      if (reduce?.variant.startsWith('serial')) expect(reduce.variant).toBe('serial+vec4');
    });
});

describe('software-adapter vec4 variants: four columns at a time, runs', () => {
  // On software adapters channels-last BatchNorm training, InstanceNorm and GroupNorm with
  // C % 4 == 0 reduce with reduce_stats_serial's main_vec4_columns (each vec4 component its own
  // group, with its own rescue); channels-first BatchNorm inference applies with apply_norm's
  // main_vec4_runs, LayerNorm/RMSNorm over a few long groups with main_vec4 block sums and the
  // staged path. All match the float64 CPU backend on every distribution, on squares that
  // overflow float32 (rescued) and with non-finite samples.
  const cases = [
    { op: 'batchNorm', layout: 'channels-last', shape: [2, 9, 7, 12], options: { training: true }, want: 'reduceStats:serial+vec4-columns' },
    // 4096 rows per channel: several chunks per column, each of several blocks.
    { op: 'batchNorm', layout: 'channels-last', shape: [4, 32, 32, 8], options: { training: true }, want: 'reduceStats:serial+vec4-columns' },
    { op: 'instanceNorm', layout: 'channels-last', shape: [3, 5, 11, 8], options: {}, want: 'reduceStats:serial+vec4-columns' },
    { op: 'groupNorm', layout: 'channels-last', shape: [2, 6, 6, 16], options: { numGroups: 8 }, want: 'reduceStats:serial+vec4-columns' },
    { op: 'batchNorm', layout: 'channels-first', shape: [3, 5, 6, 10], options: { training: false }, want: 'applyNorm:vec4-runs' },
    { op: 'layerNorm', layout: 'channels-first', shape: [3, 8, 24, 24], options: { normalizedShape: [8, 24, 24] }, want: 'reduceStats:serial+vec4' },
    { op: 'rmsNorm', layout: 'channels-first', shape: [5, 4, 32, 32], options: { normalizedShape: [4, 32, 32] }, want: 'reduceStats:serial+vec4' },
  ] as const;
  const dists = [...DISTRIBUTIONS, 'huge'] as const;
  // The planner's own choice (kernels 'auto'): `serial` would fuse the channels-last ops.
  let auto: Engine;
  beforeAll(async () => { auto = await makeGpuEngine(); });
  afterAll(() => auto?.dispose());
  test.each(cases.flatMap((c) => dists.map((dist) => [c.op, c.layout, dist, c] as const)))('%s %s, %s', async (_op, _layout, dist, c) => {
    const n = sizeOf(c.shape);
    // huge: deviations near 1e30, whose squares overflow float32.
    const data = dist === 'huge' ? generate('normal', n, 83).map((v) => v * 1e30) : generate(dist, n, 83);
    if (dist === 'mixed') {
      data[7] = Infinity;
      data[n - 2] = NaN;
    }
    // Affine operands: per channel, or per normalized element (LayerNorm/RMSNorm).
    const paramShape = 'normalizedShape' in c.options ? [...c.options.normalizedShape]
      : [c.layout === 'channels-last' ? c.shape[3] : c.shape[1]];
    const params = sizeOf(paramShape);
    const host: Record<string, Float32Array> = { weight: generate('normal', params, 7), bias: generate('offset', params, 8) };
    if (c.op === 'rmsNorm') delete host.bias;
    if (c.op === 'batchNorm' && !c.options.training) {
      host.runningMean = generate('offset', params, 5);
      host.runningVar = generate('pixels', params, 6).map((v) => v + 0.5);
    }
    const run = async (engine: Engine) => {
      const x = engine.tensor(data, [...c.shape], { layout: c.layout });
      const extra = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, engine.tensor(v, paramShape)]));
      const options = { ...c.options, ...extra };
      const kernels = engine.explain(c.op, x, options).kernels.map((k) => `${k.stage}:${k.variant}`);
      const y = (engine[c.op] as (x: Tensor, o: object) => Tensor)(x, options);
      const out = await y.read();
      dispose(x, y, ...Object.values(extra));
      return { out, kernels };
    };
    const actual = await withValidation(auto, () => run(auto));
    const expected = (await run(cpu)).out;
    const same = (a: number, e: number) => Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
    expect(expected.filter((e, i) => !Number.isFinite(e) && !same(actual.out[i], e)).length, 'non-finite outputs differ').toBe(0);
    const finite = (a: Float32Array) => a.map((v, i) => (Number.isFinite(expected[i]) ? v : 0));
    expectClose(finite(actual.out), finite(expected), `${c.op} ${c.layout} ${dist}`);
    if (auto.adapterInfo?.software) expect(actual.kernels, actual.kernels.join(' ')).toContain(c.want);
  });
});

describe('explain', () => {
  const cases: { op: OpName; shape: number[]; layout: Layout; options: object; view: object }[] = [
    { op: 'batchNorm', shape: [2, 3, 4, 5], layout: 'channels-first', options: { training: true }, view: { o: 1, p: 2, q: 3, s: 20 } },
    { op: 'batchNorm', shape: [2, 4, 5, 3], layout: 'channels-last', options: { training: true }, view: { o: 1, p: 40, q: 3, s: 1 } },
    { op: 'instanceNorm', shape: [2, 3, 4, 5], layout: 'channels-first', options: {}, view: { o: 2, p: 1, q: 3, s: 20 } },
    { op: 'groupNorm', shape: [2, 6, 4, 4], layout: 'channels-first', options: { numGroups: 3 }, view: { o: 2, p: 1, q: 3, s: 32 } },
    { op: 'groupNorm', shape: [2, 4, 4, 6], layout: 'channels-last', options: { numGroups: 3 }, view: { o: 2, p: 16, q: 3, s: 2 } },
    { op: 'layerNorm', shape: [2, 3, 4, 5], layout: 'channels-first', options: { normalizedShape: [4, 5] }, view: { o: 6, p: 1, q: 1, s: 20 } },
    { op: 'rmsNorm', shape: [2, 3, 4, 5], layout: 'channels-first', options: { normalizedShape: 5 }, view: { o: 24, p: 1, q: 1, s: 5 } },
    { op: 'moments', shape: [2, 3, 4, 5], layout: 'channels-first', options: { axes: [0, 2, 3] }, view: { o: 1, p: 2, q: 3, s: 20 } },
    { op: 'moments', shape: [2, 4, 5, 3], layout: 'channels-last', options: { axes: [0, 1, 2] }, view: { o: 1, p: 40, q: 3, s: 1 } },
    { op: 'moments', shape: [2, 3, 4, 5], layout: 'channels-first', options: { axes: [-1] }, view: { o: 24, p: 5, q: 1, s: 1 } },
  ];

  test.each(cases.map((c) => [`${c.op} ${c.shape} ${c.layout}`, c] as const))('%s: view and kernels, and nothing runs', (_name, c) => {
    for (const engine of [gpu, serial, cpu]) {
      const x = engine.tensor(generate('normal', sizeOf(c.shape), 61), c.shape, { layout: c.layout });
      const memory = engine.memory();
      const tracker = engine.device ? trackGpuWork(engine) : null;
      const e = engine.explain(c.op, x, c.options);
      tracker?.restore();
      expect(tracker?.log ?? [], 'explain makes no GPU calls').toEqual([]);
      expect(engine.memory()).toEqual(memory);
      expect(e.op).toBe(c.op);
      expect(e.backend).toBe(engine.backend);
      expect(e.view).toEqual(c.view);
      expect(e.kernels.length).toBeGreaterThan(0);
      for (const k of e.kernels) {
        expect(typeof k.stage).toBe('string');
        expect(typeof k.variant).toBe('string');
        for (const n of k.workgroups) {
          expect(Number.isInteger(n) && n >= 1).toBe(true);
          if (engine.device) expect(n).toBeLessThanOrEqual(engine.device.limits.maxComputeWorkgroupsPerDimension);
        }
      }
      const stages = e.kernels.map((k) => k.stage);
      if (engine === cpu) {
        expect(e.kernels.every((k) => k.variant === 'cpu-float64')).toBe(true);
        expect(stages).toContain('reduceStats');
      }
      if (c.op === 'moments') expect(stages).not.toContain('applyNorm');
      x.dispose();
    }
  });

  test('batchNorm eval computes no statistics', () => {
    for (const engine of [gpu, serial, cpu]) {
      const x = engine.tensor(generate('normal', 24, 62), [2, 3, 4]);
      const e = engine.explain('batchNorm', x, { runningMean: [0, 0, 0], runningVar: [1, 1, 1] });
      expect(e.view).toEqual({ o: 1, p: 2, q: 3, s: 4 });
      const stages = e.kernels.map((k) => k.stage);
      expect(stages).not.toContain('reduceStats');
      expect(e.kernels.some((k) => k.variant.startsWith('fused-'))).toBe(false);
      x.dispose();
    }
  });

  test('the kernel family shows: serial engines run serial kernels, parallel engines do not', () => {
    const shape = [2, 3, 64, 64];
    for (const [engine, serialWanted] of [[gpu, false], [serial, true]] as const) {
      const x = engine.tensor(generate('normal', sizeOf(shape), 63), shape);
      for (const [op, o] of [['batchNorm', { training: true }], ['moments', { axes: [0, 2, 3] }], ['groupNorm', { numGroups: 1 }]] as const) {
        const variants = engine.explain(op, x, o).kernels.filter((k) => k.stage === 'reduceStats' || k.variant.startsWith('fused-')).map((k) => k.variant);
        expect(variants.length, `${op}`).toBe(1);
        expect(/serial/.test(variants[0]), `${op}: ${variants}`).toBe(serialWanted);
      }
      x.dispose();
    }
  });
});

describe('engine creation', () => {
  test("backend 'auto' picks WebGPU where an adapter exists", async () => {
    const engine = await createEngine({ backend: 'auto' });
    try {
      expect(engine.backend).toBe('webgpu');
      expect(engine.device).not.toBeNull();
      expect(engine.adapterInfo).not.toBeNull();
    } finally {
      retire(engine);
    }
    const byDefault = await createEngine();
    expect(byDefault.backend).toBe('webgpu');
    retire(byDefault);
  });

  test('dispose() of an engine that made its device destroys the device', async () => {
    const engine = await makeGpuEngine();
    const device = engine.device!;
    retire(engine);
    const lost = await Promise.race([device.lost, new Promise((r) => setTimeout(() => r('still alive'), 2000))]);
    expect((lost as GPUDeviceLostInfo).reason).toBe('destroyed');
    engine.dispose(); // idempotent
  });

  test("a user's device: used as is (here without subgroups), not destroyed by dispose()", async () => {
    const dawn = create([]);
    // dawn.node's GPU object must stay reachable while its devices live (see FACTS.md).
    (globalThis as { normgpuTestGpu?: unknown }).normgpuTestGpu = dawn;
    const adapter = await dawn.requestAdapter();
    expect(adapter, 'a WebGPU adapter for the user device').not.toBeNull();
    const device = await adapter!.requestDevice({ label: 'user device' }); // no optional features, default limits
    expect(device.features.has('subgroups')).toBe(false);

    const engine = await createEngine({ device, kernels: 'parallel' });
    expect(engine.backend).toBe('webgpu');
    expect(engine.device).toBe(device);
    // The adapter is described from the user's device as well as from one normgpu requests.
    const own = gpu.adapterInfo!;
    expect(engine.adapterInfo).toMatchObject({ vendor: own.vendor, architecture: own.architecture, software: own.software });

    await withValidation(engine, async () => {
      // A rows reduce without subgroups: the workgroup-memory merge.
      const shape = [3, 1, 97, 101];
      const data = generate('offset', sizeOf(shape), 71);
      const x = engine.tensor(data, shape);
      const options = { training: true, weight: [1.5], bias: [0.25] };
      const kernels = engine.explain('batchNorm', x, options).kernels;
      expect(kernels.map((k) => k.variant)).toContain('rows+workgroup-memory');
      const y = engine.batchNorm(x, options);
      const ref = await cpu.batchNorm(cpu.tensor(data, shape), options).read();
      expectClose(await y.read(), ref, 'batchNorm with workgroup-memory merges');
      const m = engine.moments(x, { axes: [0, 2, 3], correction: 0 });
      const mc = cpu.moments(cpu.tensor(data, shape), { axes: [0, 2, 3], correction: 0 });
      expectClose(await m.mean.read(), await mc.mean.read(), 'moments mean');
      expectClose(await m.variance.read(), await mc.variance.read(), 'moments variance');
      dispose(x, y, m.mean, m.variance);
    });

    retire(engine);
    const lost = await Promise.race([device.lost.then(() => 'lost'), new Promise((r) => setTimeout(() => r('alive'), 200))]);
    expect(lost).toBe('alive');
    // Still fully usable by its owner.
    device.pushErrorScope('validation');
    const data = Float32Array.from([1, 2, 3, 4]);
    const buffer = device.createBuffer({ size: 16, usage: STORAGE_BUFFER });
    device.queue.writeBuffer(buffer, 0, data);
    expect(await readBuffer(device, buffer, 4)).toEqual(data);
    expect(await device.popErrorScope()).toBeNull();
    buffer.destroy();
    device.destroy();
  });

  test('CPU backend identity', () => {
    expect(cpu.backend).toBe('cpu');
    expect(cpu.adapterInfo).toBeNull();
    expect(cpu.device).toBeNull();
    const x = cpu.tensor([1, 2, 3], [3]);
    expect(() => x.buffer).toThrow(NormGpuError);
    x.dispose();
    expect(gpu.backend).toBe('webgpu');
    expect(gpu.adapterInfo).not.toBeNull();
  });
});

// Last in the file on purpose: if it fails, the collected Dawn instance may crash the worker
// at its next GPU wait.
describe('lifetime of the Dawn instance (Node)', () => {
  test('a disposed, unreachable engine does not let its Dawn instance be collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let ref: WeakRef<object> | undefined;
    await (async () => {
      const engine = await makeGpuEngine();
      // The object from `create([])` of npm webgpu, which FACTS.md says must outlive every
      // device made from it.
      const instance = (engine as unknown as { internalBackend?: { keepAlive?: unknown } }).internalBackend?.keepAlive;
      expect(instance, 'in Node the engine holds a Dawn instance').toBeTypeOf('object');
      ref = new WeakRef(instance as object);
      engine.dispose();
    })();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
    }
    expect(ref!.deref(), 'the Dawn instance of a disposed engine was garbage-collected').toBeDefined();
  });
});
