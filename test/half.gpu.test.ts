/**
 * float16 tensors on the WebGPU backend (SwiftShader: no `shader-f16`, so the packed u32 path):
 * raw half bits survive upload and read on both backends, a wrapped float16 GPUBuffer (odd
 * count, padded word) is read and normalized, as is an ONNX Runtime float16 output (fromOrt),
 * moments and preprocess give float16 outputs, half outputs overflow to infinity, and the GPU
 * decodes every half exactly. GPU results are compared with the CPU backend within one
 * half ulp scaled (9.8e-4); float32 results of half inputs within 1e-5.
 */
import { describe, expect, test } from 'vitest';
import { createEngine, fromOrt, preprocess, type Engine } from '../src/index';
import { fromHalfBits, halfBits, toHalfBits } from '../src/half';
import { generate, makeGpuEngine, scaledError, withEngines, withValidation } from './support/gpu';

let cpu: Engine;
let gpu: Engine;

withEngines(async () => [cpu = await createEngine({ backend: 'cpu' }), gpu = await makeGpuEngine()]);

/** Every half that is not a NaN (NaN reads back as the quiet NaN 0x7e00), plus one: an odd count. */
const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
const ODD = Uint16Array.of(...ALL, 0x3c00);

describe('raw bits', () => {
  test.each(['cpu', 'webgpu'])('every non-NaN half round-trips through a tensor on %s', async (kind) => {
    const engine = kind === 'cpu' ? cpu : gpu;
    expect(ODD.length % 2).toBe(1);
    const run = async () => {
      const t = engine.tensor(ODD, [ODD.length], { dtype: 'float16' });
      expect(t.dtype).toBe('float16');
      const bits = await t.readBits();
      const values = await t.read();
      t.dispose();
      return { bits, values };
    };
    const { bits, values } = kind === 'cpu' ? await run() : await withValidation(gpu, run);
    expect(bits).toEqual(ODD);
    expect(values).toEqual(fromHalfBits(ODD));
  });

  test('NaN halves read back as NaN', async () => {
    const t = gpu.tensor(Uint16Array.of(0x7e00, 0xfc01, 0x3c00), [3], { dtype: 'float16' });
    const v = await t.read();
    t.dispose();
    expect(Number.isNaN(v[0]) && Number.isNaN(v[1])).toBe(true);
    expect(v[2]).toBe(1);
  });

  test('float data is rounded to the nearest half, ties to even', async () => {
    const data = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, -1e-8, 0.1];
    const t = gpu.tensor(data, [6], { dtype: 'float16' });
    expect(Array.from(await t.readBits())).toEqual(data.map(halfBits));
    t.dispose();
  });
});

describe('float16 on the GPU against the CPU backend', () => {
  test('a wrapped float16 GPUBuffer with an odd count, normalized with a residual', async () => {
    const shape = [3, 5];
    const x = toHalfBits(generate('offset', 15, 7));
    const buffer = gpu.device!.createBuffer({ size: 32, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    gpu.device!.queue.writeBuffer(buffer, 0, Uint16Array.from({ length: 16 }, (_, i) => x[i] ?? 0));
    const r = toHalfBits(generate('normal', 15, 8));
    const result = await withValidation(gpu, async () => {
      const xt = gpu.fromGPUBuffer(buffer, shape, { dtype: 'float16' });
      const rt = gpu.tensor(r, shape, { dtype: 'float16' });
      const { y, sum } = gpu.layerNorm(xt, { normalizedShape: [5], residual: rt, returnSum: true, activation: 'gelu' });
      const out = { y: await y.read(), sum: await sum.readBits(), dtype: y.dtype };
      for (const t of [xt, rt, y, sum]) t.dispose();
      return out;
    });
    const xc = cpu.tensor(x, shape, { dtype: 'float16' });
    const rc = cpu.tensor(r, shape, { dtype: 'float16' });
    const ref = cpu.layerNorm(xc, { normalizedShape: [5], residual: rc, returnSum: true, activation: 'gelu' });
    expect(result.dtype).toBe('float16');
    expect(result.sum).toEqual(await ref.sum.readBits());
    expect(scaledError(result.y, await ref.y.read())).toBeLessThanOrEqual(9.8e-4);
    buffer.destroy();
  });

  test.each(['float16', 'float32'] as const)('moments of float16 inputs, %s outputs, over several axes', async (outputDtype) => {
    const shape = [3, 4, 5, 7];
    const data = generate('offset', 420, 11);
    for (const axes of [[0, 2, 3], [1], [3]]) {
      const g = await withValidation(gpu, async () => {
        const t = gpu.tensor(data, shape, { dtype: 'float16' });
        const m = gpu.moments(t, { axes, outputDtype });
        const out = { mean: await m.mean.read(), variance: await m.variance.read(), dtype: m.mean.dtype };
        for (const u of [t, m.mean, m.variance]) u.dispose();
        return out;
      });
      const c = cpu.moments(cpu.tensor(data, shape, { dtype: 'float16' }), { axes, outputDtype });
      expect(g.dtype).toBe(outputDtype);
      const tol = outputDtype === 'float16' ? 9.8e-4 : 1e-5;
      expect(scaledError(g.mean, await c.mean.read()), `mean ${axes}`).toBeLessThanOrEqual(tol);
      expect(scaledError(g.variance, await c.variance.read()), `variance ${axes}`).toBeLessThanOrEqual(tol);
    }
  });

  test('half outputs overflow to infinity as PyTorch rounds them', async () => {
    // Weight 1e5 pushes |y| past the half range (65504) at both ends of the row.
    const data = [1, 2, 3, 4, 5, 6];
    const run = (engine: Engine) => {
      const t = engine.tensor(data, [1, 6], { dtype: 'float16' });
      const y = engine.layerNorm(t, { normalizedShape: [6], weight: new Array(6).fill(1e5) });
      return y.read();
    };
    const g = await withValidation(gpu, () => run(gpu));
    const c = await run(cpu);
    expect(Array.from(g)).toEqual(Array.from(c));
    expect(g[0]).toBe(-Infinity);
    expect(g[5]).toBe(Infinity);
  });

  test('preprocess writes float16 output', async () => {
    const frame = { data: Uint8Array.from({ length: 7 * 5 * 4 }, (_, i) => (i * 37) % 256), width: 7, height: 5 };
    const opts = { preset: 'imagenet' as const, outputDtype: 'float16' as const };
    const g = await withValidation(gpu, async () => {
      const t = preprocess(gpu, frame, opts);
      const out = { values: await t.read(), dtype: t.dtype, shape: t.shape };
      t.dispose();
      return out;
    });
    const c = preprocess(cpu, frame, opts);
    expect(g.dtype).toBe('float16');
    expect(g.shape).toEqual([1, 3, 5, 7]);
    expect(scaledError(g.values, await c.read())).toBeLessThanOrEqual(9.8e-4);
    expect(Array.from(await c.readBits())).toEqual(Array.from(toHalfBits(await c.read())));
  });
});

test('fromOrt takes a float16 output (ONNX Runtime Web\'s Uint16 halves) as a float16 tensor', async () => {
  const bits = toHalfBits([1, -2, 0.5, 3, 65504]);
  const buffer = gpu.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  gpu.device!.queue.writeBuffer(buffer, 0, Uint16Array.from({ length: 8 }, (_, i) => bits[i] ?? 0));
  let disposed = 0;
  const peer = { location: 'gpu-buffer', type: 'float16', dims: [5], gpuBuffer: buffer, dispose: () => { disposed++; } };
  const t = fromOrt(gpu, peer);
  expect(t.dtype).toBe('float16');
  expect(await withValidation(gpu, () => t.readBits())).toEqual(bits);
  t.dispose();
  gpu.flush();
  expect(disposed).toBe(1);
  expect(() => fromOrt(gpu, { ...peer, type: 'int32' })).toThrow(/INVALID_DATA/);
  buffer.destroy();
});

test('the GPU decodes every half exactly (subnormals, infinities and NaN included)', async () => {
  const backend = gpu.internalBackend;
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const values = await withValidation(gpu, async () => {
    const half = backend.upload(all);
    const f32 = backend.cast(half, all.length, 'float32');
    const out = await backend.readStorage(f32, all.length);
    backend.releaseStorage(half);
    backend.releaseStorage(f32);
    return out;
  });
  const expected = fromHalfBits(all);
  for (let i = 0; i < all.length; i++) {
    if (Number.isNaN(expected[i])) expect(Number.isNaN(values[i]), i.toString(16)).toBe(true);
    else expect(Object.is(values[i], expected[i]), `${i.toString(16)}: ${values[i]} vs ${expected[i]}`).toBe(true);
  }
});
