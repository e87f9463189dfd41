/**
 * Memory you can reason about: the pool's cap, eviction, size classes and trim; `memory()`
 * counting only live tensors (undisposed ones the garbage collector reclaims give their buffers
 * back, optionally with a warning); `using`; and `tidy` scopes.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, test, vi } from 'vitest';
import { createEngine, MinMaxScaler, preprocess, type Engine, type Tensor } from '../src/index';
import { BufferPool, DEFAULT_POOL_BYTES } from '../src/gpu/buffer-pool';
import { BufferUsage, STORAGE_USAGE } from '../src/webgpu-flags';
import type { WebGpuBackend } from '../src/gpu/backend';
import { asyncErrorCode, errorCode, generate, makeGpuEngine, scaledError, sizeOf, withEngines, withValidation } from './support/gpu';

// A collector the test can run: V8 gives every context made after the flag a `gc` global.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MiB = 2 ** 20;
let gpu: Engine;
let cpu: Engine;

withEngines(async () => [gpu = await makeGpuEngine(), cpu = await createEngine({ backend: 'cpu' })]);

/** A GPUDevice stand-in that records the buffers it makes (the pool only calls createBuffer). */
function fakeDevice(maxBufferSize = 2 ** 30) {
  const made: { label: string; size: number; usage: number; destroyed: boolean; destroy(): void }[] = [];
  const device = {
    limits: { maxBufferSize, maxStorageBufferBindingSize: maxBufferSize },
    createBuffer({ label, size, usage }: GPUBufferDescriptor) {
      const b = { label: label ?? '', size, usage, destroyed: false, destroy() { b.destroyed = true; } };
      made.push(b);
      return b;
    },
  };
  return { device: device as unknown as GPUDevice, made };
}

/** Collect garbage until `done()` holds (finalizers run in later tasks), or give up after a while. */
async function collectUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

const reference = async (data: Float32Array, shape: number[], normalizedShape: number[]) => {
  const x = cpu.tensor(data, shape);
  const y = cpu.layerNorm(x, { normalizedShape });
  const out = await y.read();
  x.dispose();
  y.dispose();
  return out;
};

/**
 * `memory()` once pending work is submitted: buffers a batch still uses (disposed tensors'
 * included) go back to the pool only at its submit, at the end of the task or on `flush()`.
 */
function settled(engine: Engine) {
  engine.flush();
  return engine.memory();
}

describe('BufferPool', () => {
  test('evicts the least recently released buffers past the cap', () => {
    const { device, made } = fakeDevice();
    const pool = new BufferPool(device, 1024);
    const [a, b, c, d] = [256, 256, 512, 512].map((n, i) => pool.acquire(n, STORAGE_USAGE, `t${i}`));
    expect(pool.stats()).toEqual({ liveBytes: 1536, pooledBytes: 0 });
    for (const x of [a, b, c]) pool.release(x);
    expect(pool.stats()).toEqual({ liveBytes: 512, pooledBytes: 1024 });
    pool.release(d); // 1536 would exceed 1024: a, then b go
    expect(made.map((m) => m.destroyed)).toEqual([true, true, false, false]);
    expect(pool.stats()).toEqual({ liveBytes: 0, pooledBytes: 1024 });
    // Recurring sizes still reuse what is left.
    expect(pool.acquire(512, STORAGE_USAGE, 'again')).toBe(d);
    expect(made).toHaveLength(4);
  });

  test('destroys a buffer larger than the cap; cap 0 pools nothing; trim and close empty it', () => {
    const { device, made } = fakeDevice();
    const pool = new BufferPool(device, 4096);
    pool.release(pool.acquire(8192, STORAGE_USAGE, 'big'));
    expect(made[0].destroyed).toBe(true);
    expect(pool.stats()).toEqual({ liveBytes: 0, pooledBytes: 0 });

    const off = new BufferPool(fakeDevice().device, 0);
    off.release(off.acquire(256, STORAGE_USAGE, 'x'));
    expect(off.stats()).toEqual({ liveBytes: 0, pooledBytes: 0 });

    const kept = [pool.acquire(1024, STORAGE_USAGE, 'a'), pool.acquire(1024, BufferUsage.UNIFORM, 'b')];
    for (const k of kept) pool.release(k);
    expect(pool.stats().pooledBytes).toBe(2048);
    pool.trim();
    expect(made.slice(1).map((m) => m.destroyed)).toEqual([true, true]);
    expect(pool.stats()).toEqual({ liveBytes: 0, pooledBytes: 0 });

    const live = pool.acquire(1024, STORAGE_USAGE, 'live');
    pool.close();
    pool.release(live); // after close nothing is pooled again
    expect((live as unknown as { destroyed: boolean }).destroyed).toBe(true);
    expect(pool.stats()).toEqual({ liveBytes: 0, pooledBytes: 0 });
  });

  test('the default cap is 256 MiB', () => {
    const { device, made } = fakeDevice();
    const pool = new BufferPool(device);
    expect(DEFAULT_POOL_BYTES).toBe(256 * MiB);
    pool.release(pool.acquire(256 * MiB, STORAGE_USAGE, 'fits'));
    pool.release(pool.acquire(256 * MiB + 4, STORAGE_USAGE, 'too big'));
    expect(made.map((m) => m.destroyed)).toEqual([false, true]);
  });

  test('size classes never exceed maxBufferSize', () => {
    const limit = 1_000_000_000; // not a power of two, as some adapters report
    const { device, made } = fakeDevice(limit);
    const pool = new BufferPool(device);
    for (const bytes of [limit - 4, limit - 2 ** 20, limit]) {
      const size = pool.sizeClass(bytes);
      expect(size, `class of ${bytes}`).toBeGreaterThanOrEqual(bytes);
      expect(size, `class of ${bytes}`).toBeLessThanOrEqual(limit);
    }
    pool.acquire(limit - 4, STORAGE_USAGE, 'near the limit');
    expect(made[0].size).toBeLessThanOrEqual(limit);
    // Below the limit the classes are as before: at most 1/8 slack.
    expect(pool.sizeClass(1000)).toBe(1024);
    expect(pool.sizeClass(9 * MiB + 4)).toBe(10 * MiB);
    // On the real device too (no allocation).
    const real = gpu.internalBackend as WebGpuBackend;
    const max = gpu.device!.limits.maxBufferSize;
    expect(real.pool.sizeClass(max - 4)).toBeLessThanOrEqual(max);
  });
});

describe('pool cap on the device', () => {
  test('400 growing shapes, each disposed: pooled bytes stay within poolBytes and results stay right', async () => {
    const cap = MiB;
    const engine = await makeGpuEngine({ poolBytes: cap });
    try {
      const pooled: number[] = [];
      await withValidation(engine, async () => {
        for (let n = 1; n <= 400; n++) {
          const shape = [n, 256];
          const data = generate('normal', sizeOf(shape), n);
          const x = engine.tensor(data, shape);
          const y = engine.layerNorm(x, { normalizedShape: [256] });
          // x goes back (maybe evicted and destroyed) before the submitted work ran.
          x.dispose();
          if (n % 50 === 0) {
            expect(scaledError(await y.read(), await reference(data, shape, [256])), `layerNorm [${shape}]`).toBeLessThan(1e-5);
          }
          y.dispose();
          const m = settled(engine);
          expect(m.liveBytes, `live bytes after [${shape}]`).toBe(0);
          pooled.push(m.pooledBytes);
        }
      });
      expect(Math.max(...pooled), 'most pooled bytes').toBeLessThanOrEqual(cap);
      expect(Math.max(...pooled), 'the pool is still used').toBeGreaterThan(0);
    } finally {
      engine.dispose();
    }
  });

  test('trim destroys the pooled buffers; the engine keeps working', async () => {
    const engine = await makeGpuEngine();
    try {
      await withValidation(engine, async () => {
        const data = generate('normal', 4 * 64, 3);
        const x = engine.tensor(data, [4, 64]);
        engine.layerNorm(x, { normalizedShape: [64] }).dispose();
        expect(settled(engine).pooledBytes).toBeGreaterThan(0);
        engine.trim();
        expect(settled(engine)).toMatchObject({ pooledBytes: 0 });
        const y = engine.layerNorm(x, { normalizedShape: [64] });
        expect(scaledError(await y.read(), await reference(data, [4, 64], [64]))).toBeLessThan(1e-5);
        x.dispose();
        y.dispose();
        expect(settled(engine)).toMatchObject({ liveBytes: 0, liveTensors: 0 });
      });
    } finally {
      engine.dispose();
    }
  });

  test('poolBytes 0 disables pooling', async () => {
    const engine = await makeGpuEngine({ poolBytes: 0 });
    try {
      await withValidation(engine, async () => {
        for (let i = 0; i < 3; i++) {
          const data = generate('normal', 6 * 32, 10 + i);
          const x = engine.tensor(data, [6, 32]);
          const y = engine.layerNorm(x, { normalizedShape: [32] });
          expect(scaledError(await y.read(), await reference(data, [6, 32], [32]))).toBeLessThan(1e-5);
          x.dispose();
          y.dispose();
          expect(settled(engine)).toEqual({ liveBytes: 0, pooledBytes: 0, liveTensors: 0 });
        }
      });
    } finally {
      engine.dispose();
    }
  });

  test('invalid poolBytes and warnLeaks are INVALID_ARGUMENT', async () => {
    for (const poolBytes of [-1, Number.NaN, '1' as unknown as number]) {
      expect(await asyncErrorCode(() => createEngine({ backend: 'cpu', poolBytes })), `poolBytes ${poolBytes}`).toBe('INVALID_ARGUMENT');
    }
    expect(await asyncErrorCode(() => createEngine({ backend: 'cpu', warnLeaks: 1 as unknown as boolean }))).toBe('INVALID_ARGUMENT');
  });
});

describe('memory() counts what is live', () => {
  test('live bytes and tensors rise with tensors and fall with dispose', () => {
    const start = settled(gpu);
    const x = gpu.tensor(new Float32Array(1000), [10, 100]);
    const y = gpu.layerNorm(x, { normalizedShape: [100] });
    const m = gpu.moments(x, { axes: [1] });
    const during = settled(gpu);
    expect(during.liveTensors - start.liveTensors).toBe(4);
    expect(during.liveBytes - start.liveBytes).toBeGreaterThanOrEqual(2 * 4000 + 2 * 40);
    for (const t of [x, y, m.mean, m.variance]) t.dispose();
    x.dispose(); // idempotent: nothing is released twice
    expect(settled(gpu)).toMatchObject({ liveBytes: start.liveBytes, liveTensors: start.liveTensors });
  });

  test('tensors collected without dispose() stop counting, go back to the pool, and warn once each with warnLeaks', async () => {
    const engine = await makeGpuEngine({ warnLeaks: true });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const user = engine.device!.createBuffer({ size: 64, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
    try {
      const start = settled(engine);
      await withValidation(engine, async () => {
        // Made and dropped in a function of their own, so no reference survives on this frame.
        await (async () => {
          const x = engine.tensor(generate('normal', 2 * 3 * 8, 1), [2, 3, 8]);
          const y = engine.layerNorm(x, { normalizedShape: [8] });
          await y.read();
          engine.fromGPUBuffer(user, [16]); // wrapped: counted, never released, never warned about
          const disposed = engine.tensor(new Float32Array(8), [8]);
          disposed.dispose(); // unregistered: collecting it must not release it again
        })();
        const held = settled(engine);
        expect(held.liveTensors - start.liveTensors).toBe(3);
        expect(held.liveBytes).toBeGreaterThan(start.liveBytes);
        await collectUntil(() => settled(engine).liveTensors === start.liveTensors && warn.mock.calls.length >= 2);
      });
      const after = settled(engine);
      expect(after.liveTensors, 'live tensors after GC').toBe(start.liveTensors);
      expect(after.liveBytes, 'live bytes after GC').toBe(start.liveBytes);
      expect(after.pooledBytes, 'collected buffers went back to the pool').toBeGreaterThan(start.pooledBytes);
      const messages = warn.mock.calls.map((c) => String(c[0])).sort();
      expect(messages).toHaveLength(2);
      expect(messages[0]).toMatch(/\[2,3,8\] made by layerNorm/);
      expect(messages[1]).toMatch(/\[2,3,8\] made by tensor/);
      // The pooled buffers are sound: a new call reuses them and computes right.
      const data = generate('normal', 2 * 3 * 8, 2);
      const x = engine.tensor(data, [2, 3, 8]);
      const y = engine.layerNorm(x, { normalizedShape: [8] });
      expect(scaledError(await y.read(), await reference(data, [2, 3, 8], [8]))).toBeLessThan(1e-5);
      x.dispose();
      y.dispose();
      expect(await readUser(engine, user), 'the wrapped buffer is intact').toEqual(new Float32Array(16));
    } finally {
      warn.mockRestore();
      user.destroy();
      engine.dispose();
    }
  });

  test('the CPU backend counts tensors, reports no bytes, and reclaims collected ones the same way', async () => {
    const engine = await createEngine({ backend: 'cpu', warnLeaks: true });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      (() => {
        const x = engine.tensor([1, 2, 3, 4], [2, 2]);
        engine.rmsNorm(x, { normalizedShape: [2] });
      })();
      expect(settled(engine)).toEqual({ liveBytes: 0, pooledBytes: 0, liveTensors: 2 });
      await collectUntil(() => settled(engine).liveTensors === 0 && warn.mock.calls.length >= 2);
      expect(settled(engine)).toEqual({ liveBytes: 0, pooledBytes: 0, liveTensors: 0 });
      expect(warn.mock.calls.map((c) => String(c[0]).match(/made by (\w+)/)?.[1]).sort()).toEqual(['rmsNorm', 'tensor']);
    } finally {
      warn.mockRestore();
      engine.dispose();
    }
  });

  test('without warnLeaks a collection is silent', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const start = settled(cpu).liveTensors;
      (() => void cpu.tensor([1, 2], [2]))();
      expect(settled(cpu).liveTensors).toBe(start + 1);
      await collectUntil(() => settled(cpu).liveTensors === start);
      expect(settled(cpu).liveTensors).toBe(start);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

async function readUser(engine: Engine, buffer: GPUBuffer): Promise<Float32Array> {
  const t = engine.fromGPUBuffer(buffer, [16]);
  try {
    return await t.read();
  } finally {
    t.dispose();
  }
}

describe('using', () => {
  test('tensors and engines are disposed at the end of their block', async () => {
    const start = settled(gpu);
    let seen: Tensor[];
    {
      using x = gpu.tensor(generate('normal', 64, 5), [4, 16]);
      using y = gpu.layerNorm(x, { normalizedShape: [16] });
      expect((await y.read()).length).toBe(64);
      seen = [x, y];
      expect(settled(gpu).liveTensors).toBe(start.liveTensors + 2);
    }
    expect(seen.map((t) => t.disposed)).toEqual([true, true]);
    expect(settled(gpu)).toMatchObject({ liveBytes: start.liveBytes, liveTensors: start.liveTensors });

    let engine: Engine;
    {
      using e = await createEngine({ backend: 'cpu' });
      engine = e;
      e.tensor([1], [1]);
    }
    expect(errorCode(() => engine.tensor([1], [1]))).toBe('DISPOSED_ENGINE');
  });
});

describe('tidy', () => {
  for (const backend of ['webgpu', 'cpu'] as const) {
    const engineOf = () => (backend === 'webgpu' ? gpu : cpu);

    test(`${backend}: keeps what fn returns, disposes its other tensors, leaves outside ones alone`, async () => {
      const engine = engineOf();
      const start = settled(engine);
      const shape = [3, 4, 5];
      const data = generate('normal', sizeOf(shape), 7);
      const input = engine.tensor(data, shape);
      const made: Tensor[] = [];
      const { mean, variance } = engine.tidy(() => {
        const y = engine.layerNorm(input, { normalizedShape: [5], weight: [1, 2, 3, 4, 5] });
        const z = engine.rmsNorm(y, { normalizedShape: [5] });
        made.push(y, z);
        return engine.moments(z, { axes: [0, 2] });
      });
      expect(made.map((t) => t.disposed)).toEqual([true, true]);
      expect([input.disposed, mean.disposed, variance.disposed]).toEqual([false, false, false]);
      expect(settled(engine).liveTensors).toBe(start.liveTensors + 3);

      // Same values as without tidy.
      const y = engine.layerNorm(input, { normalizedShape: [5], weight: [1, 2, 3, 4, 5] });
      const z = engine.rmsNorm(y, { normalizedShape: [5] });
      const m = engine.moments(z, { axes: [0, 2] });
      expect(await mean.read()).toEqual(await m.mean.read());
      expect(await variance.read()).toEqual(await m.variance.read());
      for (const t of [input, mean, variance, y, z, m.mean, m.variance]) t.dispose();
      expect(settled(engine)).toMatchObject({ liveBytes: start.liveBytes, liveTensors: start.liveTensors });

      // A single tensor and an array are kept too; non-tensor results pass through.
      const one = engine.tidy(() => engine.tensor([1, 2], [2]));
      const [a, note] = engine.tidy(() => [engine.tensor([3], [1]), 'text'] as const);
      expect(engine.tidy(() => (engine.tensor([4], [1]), 42))).toBe(42);
      expect(note).toBe('text');
      expect(await one.read()).toEqual(new Float32Array([1, 2]));
      expect(await a.read()).toEqual(new Float32Array([3]));
      one.dispose();
      a.dispose();
      expect(settled(engine).liveTensors).toBe(start.liveTensors);
    });

    test(`${backend}: nested tidies hand kept tensors to the enclosing one; a throw still disposes`, () => {
      const engine = engineOf();
      const start = settled(engine).liveTensors;
      const seen: Record<string, Tensor> = {};
      const result = engine.tidy(() => {
        seen.outer = engine.tensor([1], [1]);
        const kept = engine.tidy(() => {
          seen.inner = engine.tensor([2], [1]);
          seen.returned = engine.tensor([3], [1]);
          seen.handedUp = engine.tensor([4], [1]);
          return { returned: seen.returned, handedUp: seen.handedUp };
        });
        expect(seen.inner.disposed).toBe(true);
        expect(kept.handedUp.disposed).toBe(false);
        return kept.returned;
      });
      expect(result).toBe(seen.returned);
      expect(Object.fromEntries(Object.entries(seen).map(([k, t]) => [k, t.disposed])))
        .toEqual({ outer: true, inner: true, returned: false, handedUp: true });
      result.dispose();
      expect(settled(engine).liveTensors).toBe(start);

      let made: Tensor | undefined;
      const boom = new Error('boom');
      expect(() => engine.tidy(() => {
        made = engine.tensor([5], [1]);
        engine.tidy(() => engine.tensor([6], [1]));
        throw boom;
      })).toThrow(boom);
      expect(made?.disposed).toBe(true);
      expect(settled(engine).liveTensors).toBe(start);
    });
  }

  test('wrapped buffers, preprocess and scaler outputs register; a wrapped buffer survives', async () => {
    const user = gpu.device!.createBuffer({ size: 64, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST });
    const values = Float32Array.from({ length: 16 }, (_, i) => i);
    gpu.device!.queue.writeBuffer(user, 0, values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
    const scaler = await new MinMaxScaler(gpu).fit([[0, 1], [2, 3]]);
    const start = settled(gpu);
    const made: Tensor[] = [];
    await withValidation(gpu, async () => {
      gpu.tidy(() => {
        made.push(gpu.fromGPUBuffer(user, [4, 4]));
        made.push(preprocess(gpu, { data: new Uint8Array(2 * 2 * 3).fill(128), width: 2, height: 2, channels: 3 }));
        made.push(scaler.transform([[1, 2]]));
        made.push(scaler.inverseTransform(made[2]));
      });
      expect(made.map((t) => t.disposed)).toEqual([true, true, true, true]);
      expect(settled(gpu)).toMatchObject({ liveBytes: start.liveBytes, liveTensors: start.liveTensors });
      expect(await readUser(gpu, user)).toEqual(values);
    });
    user.destroy();
  });

  test('an async function is refused before it runs; a returned promise is refused and its tensors disposed', async () => {
    const start = settled(gpu).liveTensors;
    let ran = false;
    expect(errorCode(() => gpu.tidy(async () => { ran = true; }))).toBe('INVALID_ARGUMENT');
    expect(ran).toBe(false);
    let made: Tensor | undefined;
    expect(errorCode(() => gpu.tidy(() => {
      made = gpu.tensor([1], [1]);
      return Promise.resolve(made);
    }))).toBe('INVALID_ARGUMENT');
    expect(made?.disposed).toBe(true);
    expect(settled(gpu).liveTensors).toBe(start);
    expect(errorCode(() => gpu.tidy(null as unknown as () => void))).toBe('INVALID_ARGUMENT');
  });
});

describe('wrapped buffers: onRelease', () => {
  test('runs once, after the batch that reads the buffer is submitted; on dispose and on collection', async () => {
    const values = generate('offset', 16, 5);
    const user = gpu.device!.createBuffer({ size: 64, usage: STORAGE_USAGE, label: 'test:onRelease' });
    gpu.device!.queue.writeBuffer(user, 0, values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
    const want = await reference(values, [4, 4], [4]);
    await withValidation(gpu, async () => {
      const released: string[] = [];
      const x = gpu.fromGPUBuffer(user, [4, 4], { onRelease: () => released.push('disposed') });
      const y = gpu.layerNorm(x, { normalizedShape: [4] });
      x.dispose();
      x.dispose();
      // The layerNorm reading the buffer is still in the open batch.
      expect(released).toEqual([]);
      gpu.flush();
      expect(released).toEqual(['disposed']);
      expect(scaledError(await y.read(), want)).toBeLessThanOrEqual(1e-5);
      y.dispose();

      // A tensor the collector takes releases its buffer too.
      (() => { gpu.fromGPUBuffer(user, [16], { onRelease: () => released.push('collected') }); })();
      await collectUntil(() => released.length === 2);
      expect(released).toEqual(['disposed', 'collected']);
    });
    expect(errorCode(() => gpu.fromGPUBuffer(user, [16], { onRelease: 1 as unknown as () => void }))).toBe('INVALID_ARGUMENT');
    user.destroy();
  });
});
