/**
 * Bytes and passes in `engine.explain`: a fused plan reads its input once and writes its output
 * once (the traffic of a copy); the staged path's figures follow the counting rules of
 * src/plan/traffic.ts; the reported dispatch count is the number of dispatches a call records.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, type Engine, type Layout, type OpName } from '../src/index';
import { generate, makeGpuEngine, withValidation } from './support/gpu';

let parallel: Engine;
let serial: Engine;
let auto: Engine;
let cpu: Engine;

beforeAll(async () => {
  parallel = await makeGpuEngine({ kernels: 'parallel' });
  serial = await makeGpuEngine({ kernels: 'serial' });
  auto = await makeGpuEngine();
  cpu = await createEngine({ backend: 'cpu' });
});

afterAll(() => {
  for (const e of [parallel, serial, auto, cpu]) e.dispose();
});

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('groups that fit a workgroup: the GPU plan reads its input once', () => {
  const cases: { op: OpName; shape: number[]; options: object }[] = [
    { op: 'layerNorm', shape: [64, 768], options: { normalizedShape: 768 } },
    { op: 'rmsNorm', shape: [16, 4096], options: { normalizedShape: 4096 } },
    { op: 'instanceNorm', shape: [2, 8, 16, 16], options: {} },
    { op: 'groupNorm', shape: [2, 32, 8, 8], options: { numGroups: 8 } },
  ];
  test.each(cases.map((c) => [`${c.op} [${c.shape}]`, c] as const))('%s', (_name, c) => {
    const x = parallel.tensor(generate('normal', sizeOf(c.shape), 5), c.shape);
    const e = parallel.explain(c.op, x, c.options);
    const bytes = sizeOf(c.shape) * 4;
    expect(e.kernels.map((k) => k.variant)).toEqual(['fused-rows']);
    expect(e.traffic).toEqual({
      readBytes: bytes, writeBytes: bytes, dispatches: 1, inputPasses: 1, idealReadBytes: bytes, idealWriteBytes: bytes, ratio: 1,
    });
    x.dispose();
  });

  test('the affine parameters add their size once; the serial fused kernel makes two passes', () => {
    const x = parallel.tensor(generate('normal', 64 * 768, 6), [64, 768]);
    const options = { normalizedShape: 768, weight: new Float32Array(768).fill(2), bias: new Float32Array(768) };
    expect(parallel.explain('layerNorm', x, options).traffic.readBytes).toBe(64 * 768 * 4 + 2 * 768 * 4);
    const xs = serial.tensor(generate('normal', 64 * 768, 6), [64, 768]);
    const t = serial.explain('layerNorm', xs, options).traffic;
    expect(t).toMatchObject({ inputPasses: 2, dispatches: 1, readBytes: 2 * 64 * 768 * 4 + 2 * 768 * 4, writeBytes: 64 * 768 * 4 });
    expect(t.ratio).toBeCloseTo((3 * 64 * 768 + 2 * 768) / (2 * 64 * 768), 12);
    x.dispose();
    xs.dispose();
  });
});

describe('the staged path', () => {
  test('LayerNorm [4, 10] with a weight: columns reduce, finalize, scalar apply', () => {
    // 40 floats (160 B); 4 groups; the columns reduce keeps one 16-byte partial per column and
    // group (40 partials); finalize writes one 16-byte entry per group; apply reads x, the
    // entries and the 10-float weight.
    const x = parallel.tensor(generate('normal', 40, 7), [4, 10]);
    const e = parallel.explain('layerNorm', x, { normalizedShape: 10, weight: new Float32Array(10) });
    expect(e.kernels.map((k) => [k.stage, k.readBytes, k.writeBytes, k.dispatches, k.inputPasses])).toEqual([
      ['reduceStats', 160, 640, 1, 1],
      ['finalizeStats', 640, 64, 1, 0],
      ['applyNorm', 160 + 64 + 40, 160, 1, 1],
    ]);
    expect(e.traffic).toEqual({
      readBytes: 1064, writeBytes: 864, dispatches: 3, inputPasses: 2, idealReadBytes: 160, idealWriteBytes: 160, ratio: 1928 / 320,
    });
    x.dispose();
  });

  test('BatchNorm inference reads the running statistics instead of reducing', () => {
    const shape = [2, 3, 4, 4];
    for (const engine of [parallel, cpu]) {
      const x = engine.tensor(generate('normal', 96, 8), shape);
      const e = engine.explain('batchNorm', x, { runningMean: [0, 0, 0], runningVar: [1, 1, 1] });
      expect(e.kernels.map((k) => k.stage)).toEqual(['finalizeStats', 'applyNorm']);
      expect(e.traffic.inputPasses).toBe(1);
      expect(e.kernels[0].readBytes).toBe(2 * 3 * 4);
      x.dispose();
    }
  });

  test('CPU backend: two passes for statistics, float64 entries, no dispatches', () => {
    const x = cpu.tensor(generate('normal', 40, 7), [4, 10]);
    const e = cpu.explain('layerNorm', x, { normalizedShape: 10, weight: new Float32Array(10) });
    expect(e.kernels.map((k) => [k.stage, k.readBytes, k.writeBytes, k.dispatches, k.inputPasses])).toEqual([
      ['reduceStats', 320, 64, 0, 2],
      ['finalizeStats', 64, 64, 0, 0],
      ['applyNorm', 160 + 64 + 40, 160, 0, 1],
    ]);
    const m = cpu.explain('moments', x, { axes: [1] }).traffic;
    expect(m).toMatchObject({ idealWriteBytes: 2 * 4 * 4, writeBytes: 64 + 32, dispatches: 0 });
    x.dispose();
  });
});

describe('the reported dispatch count is what a call records', () => {
  const cases: { op: OpName; shape: number[]; layout: Layout; options: object }[] = [
    { op: 'batchNorm', shape: [4, 8, 6, 6], layout: 'channels-last', options: { training: true } },
    { op: 'batchNorm', shape: [4, 8, 6, 6], layout: 'channels-first', options: { runningMean: new Float32Array(8), runningVar: new Float32Array(8).fill(1) } },
    { op: 'groupNorm', shape: [2, 6, 6, 8], layout: 'channels-last', options: { numGroups: 4, weight: new Float32Array(8).fill(1) } },
    { op: 'layerNorm', shape: [4, 10], layout: 'channels-first', options: { normalizedShape: 10 } },
    { op: 'layerNorm', shape: [8, 256], layout: 'channels-first', options: { normalizedShape: 256 } },
    { op: 'moments', shape: [4, 8, 6], layout: 'channels-first', options: { axes: [0, 2] } },
  ];
  test.each(cases.map((c) => [`${c.op} [${c.shape}] ${c.layout}`, c] as const))('%s', async (_name, c) => {
    const proto = (globalThis as unknown as { GPUComputePassEncoder: { prototype: GPUComputePassEncoder } }).GPUComputePassEncoder.prototype;
    const original = proto.dispatchWorkgroups;
    for (const engine of [parallel, serial, auto]) {
      const x = engine.tensor(generate('offset', sizeOf(c.shape), 9), c.shape, { layout: c.layout });
      const expected = engine.explain(c.op, x, c.options).traffic.dispatches;
      engine.flush();
      let dispatched = 0;
      proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>) {
        dispatched++;
        return original.apply(this, args);
      };
      try {
        await withValidation(engine, async () => {
          const out = c.op === 'moments'
            ? Object.values(engine.moments(x, c.options as { axes: number[] }))
            : [(engine as unknown as Record<string, (x: unknown, o: object) => { read(): Promise<Float32Array>; dispose(): void }>)[c.op](x, c.options)];
          engine.flush();
          await out[0].read();
          for (const t of out) t.dispose();
        });
      } finally {
        proto.dispatchWorkgroups = original;
      }
      expect(dispatched, engine === parallel ? 'parallel' : engine === serial ? 'serial' : 'auto').toBe(expected);
      x.dispose();
    }
  });
});
