/**
 * The execution path: ops issued back to back share one command buffer and one submit;
 * `engine.encode` records them into the caller's encoder; `engine.prepare` compiles pipelines
 * ahead of time without blocking. Results never depend on how the work was submitted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type Tensor } from '../src/index';
import { asyncErrorCode, errorCode, generate, makeGpuEngine, trackGpuWork, withValidation } from './support/gpu';

let engine: Engine;
beforeAll(async () => {
  engine = await makeGpuEngine();
});
afterAll(() => engine.dispose());

const data = (n: number, seed: number) => generate('offset', n, seed);

/** A chain of mixed ops; the last read collects every result. */
function chain(e: Engine, unbatched: boolean): { outputs: Tensor[]; running: Tensor[] } {
  const step = <T>(t: T): T => {
    if (unbatched) e.flush();
    return t;
  };
  const rm = e.tensor([0, 0, 0, 0], [4]);
  const rv = e.tensor([1, 1, 1, 1], [4]);
  const x = e.tensor(data(2 * 4 * 5 * 6, 1), [2, 4, 5, 6]);
  const outputs: Tensor[] = [];
  let h = x;
  for (let i = 0; i < 6; i++) {
    h = step(e.batchNorm(h, { training: true, runningMean: rm, runningVar: rv, momentum: 0.3 }));
    outputs.push(h);
    h = step(e.groupNorm(h, { numGroups: 2, weight: [1, 2, 3, 4], bias: [0, 1, 0, 1] }));
    outputs.push(h);
    h = step(e.layerNorm(h, { normalizedShape: [5, 6] }));
    outputs.push(h);
    const { mean, variance } = e.moments(h, { axes: [0, 2, 3] });
    outputs.push(step(mean), variance);
  }
  return { outputs, running: [rm, rv] };
}

describe('batched submission', () => {
  it('a chain of ops takes one submit, the readback included', async () => {
    const x = engine.tensor(data(768, 2), [1, 768]);
    await x.read();
    const gpu = trackGpuWork(engine);
    let y = x;
    for (let i = 0; i < 100; i++) y = engine.layerNorm(y, { normalizedShape: [768] });
    const result = await y.read();
    gpu.restore();
    expect(gpu.log.filter((c) => c.startsWith('queue.submit'))).toHaveLength(1);
    expect(result.every(Number.isFinite)).toBe(true);
  });

  it('batched and unbatched (flush after each op) results are identical, running statistics included', async () => {
    const batched = chain(engine, false);
    const unbatched = chain(engine, true);
    const read = (ts: Tensor[]) => Promise.all(ts.map((t) => t.read()));
    const [a, b] = await withValidation(engine, () => Promise.all([read([...batched.outputs, ...batched.running]), read([...unbatched.outputs, ...unbatched.running])]));
    expect(a).toEqual(b);
  });

  it('a batch is submitted at the end of the task without a read', async () => {
    const rm = engine.tensor([0, 0], [2]);
    const rv = engine.tensor([1, 1], [2]);
    engine.batchNorm(engine.tensor([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 2]), { training: true, runningMean: rm, runningVar: rv, momentum: 1 });
    await new Promise((r) => setTimeout(r, 0));
    // Reading a wrapper of the buffer (no normgpu op pending on it) sees the update.
    const view = engine.fromGPUBuffer(rm.buffer, [2]);
    expect(Array.from(await view.read())).toEqual([8.25, 19.25]);
  });

  it('a chain that disposes its intermediates reuses their buffers inside the batch', async () => {
    engine.flush();
    const bytes = 8 * 64 * 16 * 4;
    const before = engine.memory().liveBytes;
    const x = engine.tensor(data(8 * 64 * 16, 11), [8, 64, 16]);
    let h = engine.groupNorm(x, { numGroups: 32 });
    for (let i = 0; i < 49; i++) {
      const next = engine.groupNorm(h, { numGroups: 32 });
      h.dispose();
      h = next;
    }
    // Without reuse the batch would hold 50 outputs until its submit.
    expect(engine.memory().liveBytes - before).toBeLessThan(8 * bytes);
    const cpu = await createEngine({ backend: 'cpu' });
    let c = cpu.tensor(data(8 * 64 * 16, 11), [8, 64, 16]);
    for (let i = 0; i < 50; i++) c = cpu.groupNorm(c, { numGroups: 32 });
    const [got, want] = await Promise.all([h.read(), c.read()]);
    got.forEach((v, k) => expect(Math.abs(v - want[k])).toBeLessThan(1e-4 * (1 + Math.abs(want[k]))));
  });

  it('disposing an input before the batch is submitted does not let its buffer be reused early', async () => {
    const outputs: Tensor[] = [];
    const want: Float32Array[] = [];
    const cpu = await createEngine({ backend: 'cpu' });
    for (let i = 0; i < 20; i++) {
      const values = data(64, 100 + i);
      const x = engine.tensor(values, [4, 16]);
      outputs.push(engine.layerNorm(x, { normalizedShape: [16] }));
      x.dispose(); // the next iteration's tensor would take this buffer at once if it were pooled now
      want.push(await cpu.layerNorm(cpu.tensor(values, [4, 16]), { normalizedShape: [16] }).read());
    }
    const got = await Promise.all(outputs.map((t) => t.read()));
    got.forEach((g, i) => g.forEach((v, k) => expect(Math.abs(v - want[i][k])).toBeLessThan(1e-5 * (1 + Math.abs(want[i][k])))));
  });
});

describe("the caller's encoder", () => {
  it('many recorded ops run in the caller\'s submit, with results equal to the batched ones', async () => {
    const device = engine.device!;
    const want = chain(engine, false);
    const expected = await Promise.all([...want.outputs, ...want.running].map((t) => t.read()));

    const gpu = trackGpuWork(engine);
    const encoder = device.createCommandEncoder({ label: 'test:caller' });
    const recording = engine.encode(encoder, () => chain(engine, false));
    const submitsBefore = gpu.log.filter((c) => c.startsWith('queue.submit')).length;
    device.queue.submit([encoder.finish()]);
    gpu.restore();
    recording.release();
    expect(submitsBefore).toBe(0);
    const { outputs, running } = recording.result;
    const got = await withValidation(engine, () => Promise.all([...outputs, ...running].map((t) => t.read())));
    expect(got).toEqual(expected);
  });

  it('read() inside encode() rejects; encode on the CPU backend and nested encode throw', async () => {
    const device = engine.device!;
    const x = engine.tensor(data(12, 3), [3, 4]);
    const encoder = device.createCommandEncoder();
    let pending: Promise<unknown> = Promise.resolve();
    const recording = engine.encode(encoder, () => {
      const y = engine.layerNorm(x, { normalizedShape: [4] });
      pending = y.read();
      expect(errorCode(() => engine.encode(device.createCommandEncoder(), () => 0))).toBe('INVALID_ARGUMENT');
      return y;
    });
    expect(await asyncErrorCode(() => pending)).toBe('INVALID_ARGUMENT');
    device.queue.submit([encoder.finish()]);
    recording.release();
    expect((await recording.result.read()).length).toBe(12);
    const cpu = await createEngine({ backend: 'cpu' });
    expect(errorCode(() => cpu.encode(encoder, () => 0))).toBe('INVALID_ARGUMENT');
    expect(errorCode(() => engine.encode({} as GPUCommandEncoder, () => 0))).toBe('INVALID_ARGUMENT');
  });

  it('temporaries stay allocated until release()', () => {
    const device = engine.device!;
    engine.trim();
    const x = engine.tensor(data(4096, 5), [4, 16, 64]);
    const encoder = device.createCommandEncoder();
    const before = engine.memory().liveBytes;
    const recording = engine.encode(encoder, () => {
      engine.groupNorm(x, { numGroups: 4 }).dispose();
    });
    // The disposed output and the uniforms are held for the caller's submit.
    expect(engine.memory().liveBytes).toBeGreaterThan(before);
    device.queue.submit([encoder.finish()]);
    recording.release();
    expect(engine.memory().liveBytes).toBeLessThanOrEqual(before);
  });
});

describe('prepare', () => {
  it('compiles asynchronously what a call needs, so the call compiles nothing', async () => {
    const fresh = await makeGpuEngine({ kernels: 'parallel' });
    try {
      const device = fresh.device!;
      let asyncCompiles = 0;
      const original = device.createComputePipelineAsync.bind(device);
      device.createComputePipelineAsync = (d) => {
        asyncCompiles++;
        return original(d);
      };
      const options = { numGroups: 4, weight: [1, 2, 3, 4, 5, 6, 7, 8], bias: [0, 0, 0, 0, 1, 1, 1, 1] };
      await fresh.prepare('groupNorm', [2, 8, 7, 7], options);
      await fresh.prepare('layerNorm', [3, 10], { normalizedShape: [10] });
      await fresh.prepare('batchNorm', [2, 7, 7, 8], { training: true }, 'channels-last');
      expect(asyncCompiles).toBeGreaterThan(0);
      const gpu = trackGpuWork(fresh);
      fresh.groupNorm(fresh.tensor(data(2 * 8 * 49, 6), [2, 8, 7, 7]), options);
      fresh.layerNorm(fresh.tensor(data(30, 7), [3, 10]), { normalizedShape: [10] });
      fresh.batchNorm(fresh.tensor(data(2 * 8 * 49, 8), [2, 7, 7, 8], { layout: 'channels-last' }), { training: true });
      fresh.flush();
      gpu.restore();
      expect(gpu.log.filter((c) => c.startsWith('device.createComputePipeline'))).toEqual([]);
      // Unprepared calls still work (compiled synchronously on first use).
      expect((await fresh.instanceNorm(fresh.tensor(data(24, 9), [2, 3, 4])).read()).length).toBe(24);
    } finally {
      fresh.dispose();
    }
  });

  it('validates like the op itself and resolves at once on the CPU backend', async () => {
    expect(await asyncErrorCode(() => engine.prepare('groupNorm', [2, 6, 3], { numGroups: 4 }))).toBe('GROUPS_NOT_DIVISIBLE');
    expect(await asyncErrorCode(() => engine.prepare('nope' as never, [2, 3]))).toBe('INVALID_ARGUMENT');
    const cpu = await createEngine({ backend: 'cpu' });
    await cpu.prepare('layerNorm', [2, 3], { normalizedShape: [3] });
  });
});
