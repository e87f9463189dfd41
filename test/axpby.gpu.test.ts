/**
 * The axpby stage (y = alpha·a + beta·b) that gradient accumulation, SGD and InstanceNorm's
 * running statistics use: GPU against its CPU twin and a float64 loop, for odd and vec4 counts,
 * with and without b, in place and not; grids folded into y past maxComputeWorkgroupsPerDimension;
 * NaN, infinities and float32 overflow; the bit-exact copy (alpha 1, no b); checks that throw
 * before any GPU work; no host upload but the uniform per call; `.grad` accumulated in place.
 *
 * TOLERANCE: the CPU twin rounds once, so |cpu − e| ≤ 2^-24·|e|; the GPU rounds alpha, beta,
 * both products and the sum, so |gpu − e| ≤ 2^-22·(|alpha·a| + |beta·b|) (e the float64 value).
 */
import { create, globals } from 'webgpu';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BatchNorm1d, createEngine, NormGpuError, type Engine, type Tensor } from '../src/index';
import type { Storage } from '../src/backend';
import { addInto, scaleAdd } from '../src/api/modules/scale-add';
import { APPLY_WG, linearGrid } from '../src/plan/gpu-plan';
import { asyncErrorCode, errorCode, generate, makeGpuEngine, scaledError, trackGpuWork, withEngines, withValidation, worstElement } from './support/gpu';

let gpu: Engine;
let cpu: Engine;

withEngines(async () => [gpu = await makeGpuEngine(), cpu = await createEngine({ backend: 'cpu' })]);

type Form = 'a' | 'a+b' | 'in place';

/** Run the stage on `engine`'s backend from host data; returns the result and, in place, whether b's memory took it. */
async function run(engine: Engine, form: Form, a: Float32Array, alpha: number, b: Float32Array, beta: number): Promise<Float32Array> {
  const backend = engine.internalBackend;
  const sa = backend.upload(a);
  const sb = backend.upload(b);
  try {
    const y = backend.axpby(sa, alpha, form === 'a' ? null : sb, beta, a.length, { inPlace: form === 'in place' });
    if (form === 'in place') {
      expect(sameBuffer(y, sb), 'the in-place result is b\'s memory').toBe(true);
      return await backend.readStorage(sb, a.length);
    }
    const out = await backend.readStorage(y, a.length);
    backend.releaseStorage(y);
    return out;
  } finally {
    backend.releaseStorage(sa);
    backend.releaseStorage(sb);
  }
}

const sameBuffer = (x: Storage, y: Storage) => (x.kind === 'gpu' && y.kind === 'gpu' ? x.buffer === y.buffer : x.kind === 'cpu' && y.kind === 'cpu' && x.data === y.data);

/**
 * Every element of `actual` within `ulps`·2^-24 of (|alpha·a| + |beta·b|) of the float64
 * result; a result that is NaN or overflows float32 must be NaN or that infinity.
 */
function expectNear(actual: Float32Array, a: Float32Array, alpha: number, b: Float32Array | null, beta: number, ulps: number, what: string): void {
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) {
    const e = alpha * a[i] + (b ? beta * b[i] : 0);
    const stored = Math.fround(e);
    const ok = Number.isNaN(stored) ? Number.isNaN(actual[i])
      : !Number.isFinite(stored) ? actual[i] === stored
        : Math.abs(actual[i] - e) <= ulps * 2 ** -24 * (Math.abs(alpha * a[i]) + (b ? Math.abs(beta * b[i]) : 0)) + 2 ** -149;
    if (!ok) bad = i;
  }
  expect(bad, `${what}: element ${bad} is ${actual[bad]}, a ${a[bad]}, b ${b?.[bad]}`).toBe(-1);
}

describe('GPU equals the CPU twin and the float64 loop', () => {
  const counts = [1, 3, 5, 1023, 1024, 4100, 4097];
  const forms: Form[] = ['a', 'a+b', 'in place'];
  for (const form of forms) {
    test.each(counts)(`${form}, count %i (vec4 when count % 4 == 0)`, async (n) => {
      const a = generate('offset', n, n);
      const b = generate('mixed', n, n + 1);
      const [alpha, beta] = [0.37, -1.3];
      const g = await withValidation(gpu, () => run(gpu, form, a, alpha, b, beta));
      const c = await run(cpu, form, a, alpha, b, beta);
      const withB = form === 'a' ? null : b;
      expectNear(c, a, alpha, withB, beta, 1, 'cpu');
      expectNear(g, a, alpha, withB, beta, 4, 'gpu');
      // The accuracy bar (the bound above is the stage's contract; 'mixed' b cancels the 1e4 offset at places).
      expect(scaledError(g, c), worstElement(g, c)).toBeLessThanOrEqual(1e-5);
    });
  }

  test('alpha 1, beta 1 (gradient accumulation) is the correctly rounded sum: GPU and CPU agree bit for bit', async () => {
    for (const n of [4099, 4096]) {
      const a = generate('mixed', n, 7);
      const b = generate('offset', n, 8);
      for (const form of ['a+b', 'in place'] as const) {
        const g = await withValidation(gpu, () => run(gpu, form, a, 1, b, 1));
        const c = await run(cpu, form, a, 1, b, 1);
        expect(new Uint32Array(g.buffer, g.byteOffset, n), `${form}, count ${n}`).toEqual(new Uint32Array(c.buffer, c.byteOffset, n));
        expect(c).toEqual(Float32Array.from(a, (v, i) => v + b[i]));
      }
    }
  });

  test('NaN and infinities propagate as IEEE float32 arithmetic says; float32 overflow gives infinity', async () => {
    const specials = [NaN, Infinity, -Infinity, 0, -0, 1, 3e38, -3e38];
    const a = Float32Array.from({ length: 64 }, (_, i) => specials[i % 8]);
    const b = Float32Array.from({ length: 64 }, (_, i) => specials[Math.floor(i / 8)]);
    const f = Math.fround;
    // These factors scale exactly, so float32 arithmetic has one answer per element.
    for (const [alpha, beta] of [[2, 0.5], [0, 1], [1, 0], [-1, 1]]) {
      for (const form of ['a', 'a+b', 'in place'] as const) {
        const withB = form !== 'a';
        const g = await withValidation(gpu, () => run(gpu, form, a, alpha, b, beta));
        const c = await run(cpu, form, a, alpha, b, beta);
        const what = `alpha ${alpha}, beta ${beta}, ${form}`;
        const float32 = Float32Array.from(a, (v, i) => (withB ? f(f(alpha * v) + f(beta * b[i])) : f(alpha * v)));
        const float64 = Float32Array.from(a, (v, i) => alpha * v + (withB ? beta * b[i] : 0));
        expect(scaledError(g, float32), `gpu ${what}: ${worstElement(g, float32)}`).toBe(0);
        expect(scaledError(c, float64), `cpu ${what}: ${worstElement(c, float64)}`).toBe(0);
        // They differ only where a product overflows float32 (2 · 3e38) on the GPU alone.
        const overflows = (i: number) => !Number.isFinite(f(alpha * a[i])) && Number.isFinite(a[i]);
        const agree = (x: Float32Array) => x.filter((_, i) => !overflows(i));
        expect(scaledError(agree(g), agree(c)), what).toBe(0);
      }
    }
  });

  test('alpha 1 without b copies bit for bit: -0, subnormals, NaN payloads, infinities', async () => {
    const bits = Uint32Array.from([0x80000000, 0x00000001, 0x807fffff, 0x7fc01234, 0xffa00001, 0x7f800000, 0x3f800001, 0x12345678, 0xdeadbeef]);
    const a = new Float32Array(bits.buffer);
    for (const engine of [gpu, cpu]) {
      const y = await withValidation(gpu, () => run(engine, 'a', a, 1, new Float32Array(a.length), 0));
      expect(Array.from(new Uint32Array(y.buffer, y.byteOffset, a.length)), engine.backend).toEqual(Array.from(bits));
    }
  });
});

describe('a grid folded into y past maxComputeWorkgroupsPerDimension', () => {
  const CAP = 8;
  let capped: Engine;
  let device: GPUDevice;
  const dispatched: number[][] = [];
  let restore = () => {};

  beforeAll(async () => {
    Object.assign(globalThis, globals);
    // Dawn's GPU object must stay reachable for the life of the process.
    const dawn = ((globalThis as Record<string, unknown>).__normgpuTestDawn ??= create([])) as GPU;
    device = await (await dawn.requestAdapter())!.requestDevice({ label: 'capped-axpby' });
    // An own `limits` shadows the prototype's getter: the backend sees the lower cap.
    const limits: Record<string, number> = {};
    for (const k in device.limits) limits[k] = (device.limits as unknown as Record<string, number>)[k];
    Object.defineProperty(device, 'limits', { value: { ...limits, maxComputeWorkgroupsPerDimension: CAP } });
    capped = await createEngine({ device });
    // Note every dispatch's grid (the real device would accept x above the fake cap).
    const probe = device.createCommandEncoder().beginComputePass();
    const proto = Object.getPrototypeOf(probe) as { dispatchWorkgroups: (...d: number[]) => void };
    probe.end();
    const original = proto.dispatchWorkgroups;
    proto.dispatchWorkgroups = function (this: unknown, ...d: number[]) {
      dispatched.push(d);
      return original.apply(this, d);
    };
    restore = () => { proto.dispatchWorkgroups = original; };
  });

  afterAll(() => {
    restore();
    capped?.dispose();
    device?.destroy();
  });

  // Three rows of CAP workgroups: 17 workgroups of scalars, and of vec4s.
  test.each([CAP * APPLY_WG * 2 + 77, 4 * (CAP * APPLY_WG * 2 + 5)])('count %i', async (n) => {
    const units = n % 4 === 0 ? n / 4 : n;
    expect(linearGrid(units, APPLY_WG, CAP)).toEqual([CAP, 3, 1]);
    const a = generate('normal', n, 3);
    const b = generate('offset', n, 4);
    for (const form of ['a+b', 'in place'] as const) {
      dispatched.length = 0;
      const g = await withValidation(capped, () => run(capped, form, a, -0.75, b, 2.5));
      expect(dispatched, form).toEqual([[CAP, 3, 1]]);
      expectNear(g, a, -0.75, b, 2.5, 4, `${form}, count ${n}`);
    }
  });
});

describe('scaleAdd and addInto', () => {
  const filled = (engine: Engine, n: number, seed: number) => engine.tensor(generate('normal', n, seed), [n]);

  test('every check throws before any GPU work', async () => {
    const x = filled(gpu, 8, 1);
    const y = filled(gpu, 8, 2);
    const short = filled(gpu, 7, 3);
    const half = gpu.tensor(new Float32Array(8), [8], { dtype: 'float16' });
    const foreign = filled(cpu, 8, 4);
    const work = trackGpuWork(gpu);
    try {
      expect(errorCode(() => addInto(gpu, x, x))).toBe('INVALID_ARGUMENT');
      expect(errorCode(() => addInto(gpu, x, short))).toBe('PARAM_LENGTH_MISMATCH');
      expect(errorCode(() => scaleAdd(gpu, x, 2, short))).toBe('PARAM_LENGTH_MISMATCH');
      expect(errorCode(() => scaleAdd(gpu, half, 2, null))).toBe('INVALID_DTYPE');
      expect(errorCode(() => addInto(gpu, half, x))).toBe('INVALID_DTYPE');
      expect(errorCode(() => addInto(gpu, x, foreign))).toBe('FOREIGN_TENSOR');
      y.dispose();
      expect(errorCode(() => addInto(gpu, y, x))).toBe('DISPOSED_TENSOR');
      expect(work.log).toEqual([]);
    } finally {
      work.restore();
      for (const t of [x, short, half, foreign]) t.dispose();
    }
  });

  test('an in-place add uploads nothing but its uniform, allocates nothing and keeps the target tensor', async () => {
    const n = 1000;
    const target = filled(gpu, n, 5);
    const delta = filled(gpu, n, 6);
    const [t0, d0] = [await target.read(), await delta.read()];
    await withValidation(gpu, async () => {
      addInto(gpu, target, delta, 0.5); // warms the pipeline and the pool
      await target.read();
      const before = gpu.memory();
      const work = trackGpuWork(gpu);
      try {
        addInto(gpu, target, delta, 0.5);
        gpu.internalBackend.flush();
      } finally {
        work.restore();
      }
      expect(work.log.filter((l) => l.startsWith('queue.writeBuffer'))).toEqual(['queue.writeBuffer(normgpu:axpby:axpby-params)']);
      expect(work.log.filter((l) => l.startsWith('device.createBuffer'))).toEqual([]);
      const out = await target.read();
      expect(gpu.memory()).toEqual(before);
      // Halving is exact and each sum correctly rounded: the result is known bit for bit.
      expect(out).toEqual(Float32Array.from(t0, (v, i) => Math.fround(Math.fround(v + 0.5 * d0[i]) + 0.5 * d0[i])));
    });
    target.dispose();
    delta.dispose();
  });

  test('the target keeps its buffer and takes the fault of the work it was added from', async () => {
    const target = filled(gpu, 16, 7);
    const delta = filled(gpu, 16, 8);
    const d = delta.storage as Storage & { kind: 'gpu' };
    // delta's buffer, as if the work that wrote it had failed.
    const faulty = gpu.internalTensor({ ...d, owned: false, fault: Promise.resolve(new NormGpuError('GPU_ERROR', 'injected')) }, [16], 'channels-first', 'test');
    const buffer = (target.storage as Storage & { kind: 'gpu' }).buffer;
    addInto(gpu, target, delta);
    await target.read();
    addInto(gpu, target, faulty);
    expect((target.storage as Storage & { kind: 'gpu' }).buffer).toBe(buffer);
    expect(await asyncErrorCode(() => target.read())).toBe('GPU_ERROR');
    for (const t of [target, delta, faulty]) t.dispose();
  });

  test('Parameter.grad accumulates in place (same tensor); a grad assigned from outside is replaced, not written', async () => {
    for (const engine of [gpu, cpu]) {
      await withValidation(gpu, async () => {
        const m = new BatchNorm1d(engine, 3);
        const x = engine.tensor(generate('normal', 4 * 3 * 5, 1), [4, 3, 5]);
        const dy = engine.tensor(generate('normal', 4 * 3 * 5, 2), [4, 3, 5]);
        const step = () => {
          const y = m.forward(x);
          y.dispose();
          m.backward(dy).dispose();
        };
        step();
        const grad = m.weight!.grad!;
        const once = await grad.read();
        step();
        expect(m.weight!.grad, engine.backend).toBe(grad);
        expect(await grad.read()).toEqual(once.map((v) => Math.fround(v + v)));
        grad.dispose();
        const mine = engine.tensor(new Float32Array(3).fill(1), [3]);
        m.weight!.grad = mine;
        step();
        expect(mine.disposed, 'the assigned grad was replaced').toBe(true);
        expectNear(await m.weight!.grad!.read(), once, 1, new Float32Array(3).fill(1), 1, 4, `${engine.backend} assigned grad`);
        for (const t of [x, dy] as Tensor[]) t.dispose();
        m.dispose();
      });
    }
  });
});
