/**
 * Failures of the GPU itself surface as typed errors, never as zeros: validation errors of the
 * work behind a result (a destroyed or foreign wrapped buffer), device loss (pending reads,
 * later calls, recovery to the CPU backend or a fresh device), reads after dispose(), and
 * tensors aliased across operands. Each case here returned zeros or an untyped AbortError
 * before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, NormGpuError, StandardScaler, type Engine } from '../src/index';
import { asyncErrorCode, errorCode, makeGpuEngine, scaledError } from './support/gpu';

const engines: Engine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.dispose();
});

async function gpu(opts: Parameters<typeof makeGpuEngine>[0] = {}): Promise<Engine> {
  const e = await makeGpuEngine(opts);
  engines.push(e);
  return e;
}

const X = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 3 + i);
const STORAGE_COPY = 0x80 | 0x4 | 0x8;

/** Collects errors the device reports outside any scope (there must be none). */
function uncaptured(engine: Engine): GPUError[] {
  const seen: GPUError[] = [];
  engine.device!.addEventListener('uncapturederror', (e) => seen.push((e as GPUUncapturedErrorEvent).error));
  return seen;
}

describe('GPU errors become typed errors on the result', () => {
  it('a destroyed wrapped buffer: the op and everything after it reject with GPU_ERROR', async () => {
    const engine = await gpu();
    const seen = uncaptured(engine);
    const buffer = engine.device!.createBuffer({ label: 'test:destroyed', size: X.byteLength, usage: STORAGE_COPY });
    engine.device!.queue.writeBuffer(buffer, 0, X);
    const x = engine.fromGPUBuffer(buffer, [4, 6]);
    buffer.destroy();
    const y = engine.layerNorm(x, { normalizedShape: [6] });
    const z = engine.rmsNorm(y, { normalizedShape: [6] });
    const { mean } = engine.moments(x, { axes: [1] });
    expect(await asyncErrorCode(() => y.read())).toBe('GPU_ERROR');
    expect(await asyncErrorCode(() => z.read())).toBe('GPU_ERROR');
    expect(await asyncErrorCode(() => mean.read())).toBe('GPU_ERROR');
    expect(await asyncErrorCode(() => new StandardScaler(engine).fit(x))).toBe('GPU_ERROR');
    // The engine stays usable, and nothing reached the console as an uncaptured error.
    const ok = engine.layerNorm(engine.tensor(X, [4, 6]), { normalizedShape: [6] });
    const cpu = await createEngine({ backend: 'cpu' });
    const want = await cpu.layerNorm(cpu.tensor(X, [4, 6]), { normalizedShape: [6] }).read();
    expect(scaledError(await ok.read(), want)).toBeLessThan(1e-5);
    expect(seen).toEqual([]);
  });

  it("a buffer of another device rejects with GPU_ERROR, and the message says what failed", async () => {
    const engine = await gpu();
    const other = await gpu();
    const buffer = other.device!.createBuffer({ label: 'test:foreign', size: X.byteLength, usage: STORAGE_COPY });
    const y = engine.batchNorm(engine.fromGPUBuffer(buffer, [4, 6]), { training: true });
    const error = await y.read().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(NormGpuError);
    expect((error as NormGpuError).code).toBe('GPU_ERROR');
    expect((error as NormGpuError).message).toMatch(/batchNorm/);
  });
});

describe('device loss', () => {
  it("'throw' (default): pending reads and later calls reject with DEVICE_LOST, backend says 'lost'", async () => {
    const engine = await gpu();
    const events: { reason: string }[] = [];
    engine.addEventListener('devicelost', (e) => events.push((e as CustomEvent).detail));
    const x = engine.tensor(X, [4, 6]);
    const pending = engine.layerNorm(x, { normalizedShape: [6] }).read();
    engine.device!.destroy();
    expect(await asyncErrorCode(() => pending)).toBe('DEVICE_LOST');
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual([expect.objectContaining({ reason: 'destroyed', recovery: 'throw' })]);
    expect(engine.backend).toBe('lost');
    expect(errorCode(() => engine.layerNorm(x, { normalizedShape: [6] }))).toBe('DEVICE_LOST');
    expect(errorCode(() => engine.tensor(X, [24]))).toBe('DEVICE_LOST');
    expect(await asyncErrorCode(() => x.read())).toBe('DEVICE_LOST');
    const error = await x.read().then(() => null, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/destroyed/);
  });

  it("'cpu': the engine continues on the CPU backend; tensors of the lost device say DEVICE_LOST", async () => {
    const engine = await gpu({ onDeviceLost: 'cpu' });
    const old = engine.tensor(X, [4, 6]);
    const restored = new Promise<unknown>((r) => engine.addEventListener('devicerestored', (e) => r((e as CustomEvent).detail)));
    engine.device!.destroy();
    expect(await restored).toEqual({ backend: 'cpu' });
    expect(engine.backend).toBe('cpu');
    expect(engine.device).toBeNull();
    const y = await engine.groupNorm(engine.tensor(X, [2, 4, 3]), { numGroups: 2 }).read();
    const cpu = await createEngine({ backend: 'cpu' });
    expect(y).toEqual(await cpu.groupNorm(cpu.tensor(X, [2, 4, 3]), { numGroups: 2 }).read());
    expect(errorCode(() => engine.layerNorm(old, { normalizedShape: [6] }))).toBe('DEVICE_LOST');
    expect(await asyncErrorCode(() => old.read())).toBe('DEVICE_LOST');
  });

  it("'recreate': a fresh device takes over and ops run on it", async () => {
    const engine = await gpu({ onDeviceLost: 'recreate' });
    const first = engine.device;
    const restored = new Promise<unknown>((r) => engine.addEventListener('devicerestored', (e) => r((e as CustomEvent).detail)));
    first!.destroy();
    expect(await restored).toEqual({ backend: 'webgpu' });
    expect(engine.backend).toBe('webgpu');
    expect(engine.device).not.toBe(first);
    const y = await engine.layerNorm(engine.tensor(X, [4, 6]), { normalizedShape: [6] }).read();
    const cpu = await createEngine({ backend: 'cpu' });
    expect(scaledError(y, await cpu.layerNorm(cpu.tensor(X, [4, 6]), { normalizedShape: [6] }).read())).toBeLessThan(1e-5);
  });

  it('rejects an unknown onDeviceLost policy', async () => {
    expect(await asyncErrorCode(() => createEngine({ onDeviceLost: 'retry' as never }))).toBe('INVALID_ARGUMENT');
  });
});

describe('after dispose()', () => {
  it('pending and later reads reject with DISPOSED_ENGINE, calls throw it', async () => {
    for (const backend of ['webgpu', 'cpu'] as const) {
      const engine = backend === 'webgpu' ? await makeGpuEngine() : await createEngine({ backend });
      const x = engine.tensor(X, [4, 6]);
      const pending = engine.instanceNorm(engine.tensor(X, [2, 3, 4])).read();
      engine.dispose();
      const code = await asyncErrorCode(() => pending);
      // The CPU backend has nothing pending: its read already resolved.
      expect(backend === 'cpu' ? ['no error', 'DISPOSED_ENGINE'] : ['DISPOSED_ENGINE']).toContain(code);
      expect(await asyncErrorCode(() => x.read())).toBe('DISPOSED_ENGINE');
      expect(errorCode(() => engine.layerNorm(x, { normalizedShape: [6] }))).toBe('DISPOSED_ENGINE');
    }
  });
});

describe('aliased operands', () => {
  for (const backend of ['webgpu', 'cpu'] as const) {
    it(`${backend}: in-place running statistics may not alias another operand; read-only ones may`, async () => {
      const engine = backend === 'webgpu' ? await gpu({ kernels: 'parallel' }) : await createEngine({ backend });
      const x = engine.tensor(X, [2, 3, 4]);
      const stats = engine.tensor([0.5, 1, 2], [3]);
      const other = engine.tensor([1, 1, 1], [3]);
      expect(errorCode(() => engine.batchNorm(x, { training: true, runningMean: stats, runningVar: stats }))).toBe('ALIASED_OPERANDS');
      expect(errorCode(() => engine.batchNorm(x, { training: true, runningMean: stats, runningVar: other, weight: stats }))).toBe('ALIASED_OPERANDS');
      expect(errorCode(() => engine.batchNorm(x, { training: true, runningMean: other, runningVar: stats, bias: stats }))).toBe('ALIASED_OPERANDS');
      expect(await stats.read()).toEqual(Float32Array.from([0.5, 1, 2]));
      // Inference reads its statistics: one tensor as mean and variance is fine.
      const y = await engine.batchNorm(x, { runningMean: stats, runningVar: stats, weight: stats, bias: stats }).read();
      const cpu = await createEngine({ backend: 'cpu' });
      const c = (a: number[]) => cpu.tensor(a, [3]);
      const want = await cpu.batchNorm(cpu.tensor(X, [2, 3, 4]), {
        runningMean: c([0.5, 1, 2]), runningVar: c([0.5, 1, 2]), weight: c([0.5, 1, 2]), bias: c([0.5, 1, 2]),
      }).read();
      expect(scaledError(y, want)).toBeLessThan(1e-5);
    });
  }

  it('two wrappers of one GPUBuffer count as one tensor', async () => {
    const engine = await gpu();
    const buffer = engine.device!.createBuffer({ label: 'test:shared', size: 16, usage: STORAGE_COPY });
    const a = engine.fromGPUBuffer(buffer, [3]);
    const b = engine.fromGPUBuffer(buffer, [3]);
    const x = engine.tensor(X, [2, 3, 4]);
    expect(errorCode(() => engine.batchNorm(x, { training: true, runningMean: a, runningVar: b }))).toBe('ALIASED_OPERANDS');
    buffer.destroy();
  });
});
