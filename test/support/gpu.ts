/**
 * Test helpers for the WebGPU backend: an engine that must exist (never a skip), error scopes
 * around GPU work, the scaled error metric of the accuracy bar, seeded data generators and the
 * code of a typed error. Dawn finds its Vulkan driver through test/setup-env.ts.
 */
import { afterAll, beforeAll } from 'vitest';
import { rng } from '../../demo/bench/workloads';
import { createEngine, NormGpuError, type Engine, type EngineOptions } from '../../src/index';

let adapterLogged = false;

/**
 * A `webgpu` engine. Throws (the test fails, it is never skipped) when WebGPU is unavailable,
 * and logs the adapter once per test file so CI logs say what the GPU tests ran on.
 */
export async function makeGpuEngine(opts: Omit<EngineOptions, 'backend'> = {}): Promise<Engine> {
  let engine: Engine;
  try {
    engine = await createEngine({ ...opts, backend: 'webgpu' });
  } catch (e) {
    throw new Error(
      `WebGPU is required by this test and is unavailable (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '<unset>'}): ${String(e)}`,
      { cause: e },
    );
  }
  if (engine.backend !== 'webgpu' || !engine.device) {
    throw new Error(`expected a webgpu engine, got backend ${engine.backend}`);
  }
  if (!adapterLogged) {
    adapterLogged = true;
    const i = engine.adapterInfo;
    console.log(
      `[webgpu adapter] vendor=${i?.vendor || '?'} architecture=${i?.architecture || '?'} device=${i?.device || '?'}` +
        ` description=${i?.description || '?'} software=${i?.software}`,
    );
  }
  return engine;
}

/**
 * The engines of one test file: `make` runs before its tests (assigning the file's engine
 * variables and returning the engines), and every engine it returned is disposed after them.
 */
export function withEngines(make: () => Promise<readonly Engine[]>): void {
  let made: readonly Engine[] = [];
  beforeAll(async () => { made = await make(); });
  afterAll(() => { for (const e of made) e.dispose(); });
}

function deviceOf(engine: Engine): GPUDevice {
  const d = engine.device;
  if (!d) throw new Error('withValidation needs a webgpu engine');
  return d;
}

/**
 * Run `fn` (GPU work, including reads) inside validation and out-of-memory error scopes and
 * throw if the device reported any error. Scopes are popped even when `fn` throws.
 */
export async function withValidation<T>(engine: Engine, fn: () => T | Promise<T>): Promise<T> {
  const device = deviceOf(engine);
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  let result: T;
  try {
    result = await fn();
  } finally {
    const oom = await device.popErrorScope();
    const validation = await device.popErrorScope();
    const problems = [oom && `out-of-memory: ${oom.message}`, validation && `validation: ${validation.message}`].filter(Boolean);
    if (problems.length) throw new Error(`WebGPU reported errors:\n${problems.join('\n')}`);
  }
  return result;
}

/**
 * Counts GPU API calls made on an engine's device (buffers, encoders, bind groups, pipelines,
 * submits, queue writes): errors.test.ts checks that a rejected call made none.
 */
export function trackGpuWork(engine: Engine): { readonly calls: number; readonly log: readonly string[]; restore(): void } {
  const device = deviceOf(engine);
  const log: string[] = [];
  const restores: (() => void)[] = [];
  const patch = (target: object, name: string, label: string) => {
    const t = target as Record<string, unknown>;
    const had = Object.prototype.hasOwnProperty.call(t, name);
    const own = t[name];
    const original = (t[name] as (...a: unknown[]) => unknown).bind(target);
    t[name] = (...args: unknown[]) => {
      const l = (args[0] as { label?: string } | undefined)?.label;
      log.push(l ? `${label}(${l})` : label);
      return original(...args);
    };
    restores.push(() => {
      if (had) t[name] = own;
      else delete t[name];
    });
  };
  for (const m of ['createBuffer', 'createCommandEncoder', 'createBindGroup', 'createComputePipeline', 'createShaderModule']) {
    patch(device, m, `device.${m}`);
  }
  for (const m of ['submit', 'writeBuffer']) patch(device.queue, m, `queue.${m}`);
  return {
    get calls() { return log.length; },
    log,
    restore() { for (const r of restores.reverse()) r(); },
  };
}

/**
 * max_i |a_i − e_i| / (1 + |e_i|), the accuracy bar's metric. NaN against NaN and equal
 * infinities count as 0; NaN or an infinity against anything else counts as Infinity.
 */
export function scaledError(a: ArrayLike<number>, e: ArrayLike<number>): number {
  if (a.length !== e.length) throw new Error(`length mismatch: ${a.length} vs ${e.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = scaledErrorAt(a[i], e[i]);
    if (err > worst) worst = err;
    if (worst === Infinity) break;
  }
  return worst;
}

function scaledErrorAt(a: number, e: number): number {
  const an = Number.isNaN(a);
  const en = Number.isNaN(e);
  if (an || en) return an && en ? 0 : Infinity;
  if (a === e) return 0; // also equal infinities
  if (!Number.isFinite(a) || !Number.isFinite(e)) return Infinity;
  return Math.abs(a - e) / (1 + Math.abs(e));
}

/** Mean |x| over the finite inputs of each statistics group: the size a float32 sum of them rounds at. */
export function groupMeanAbs(x: Float32Array, groups: number, groupOf: (i: number) => number): Float64Array {
  const sum = new Float64Array(groups);
  const count = new Float64Array(groups);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) continue;
    const g = groupOf(i);
    sum[g] += Math.abs(x[i]);
    count[g]++;
  }
  return sum.map((v, g) => (count[g] ? v / count[g] : 0));
}

/**
 * `scaledError` of a mean measured on its data's scale: max |a − e| / (1 + |e| + scale[i]),
 * `scale` from `groupMeanAbs`. A float32 sum of values of size A rounds at ε·A whatever its
 * result, so a mean that cancels cannot be relative-accurate; where it does not cancel this
 * is the plain metric (see test/support/fuzz.ts).
 */
export function meanScaledError(a: ArrayLike<number>, e: ArrayLike<number>, scale: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < e.length; i++) {
    const plain = scaledErrorAt(a[i], e[i]);
    const err = Number.isFinite(plain) && plain > 0 ? Math.abs(a[i] - e[i]) / (1 + Math.abs(e[i]) + scale[i]) : plain;
    if (err > worst) worst = err;
  }
  return worst;
}

/** Index and values of the worst element, for failure messages. */
export function worstElement(a: ArrayLike<number>, e: ArrayLike<number>): string {
  let worst = -1;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const err = scaledErrorAt(a[i], e[i]);
    if (err > worst) { worst = err; at = i; }
  }
  return at < 0 ? 'empty' : `worst at [${at}]: got ${a[at]}, expected ${e[at]} (scaled error ${worst})`;
}

/** Mulberry32, uniform in [0, 1): the seeded generator the benchmark's data also come from. */
export const mulberry32 = rng;

/** Standard normal samples from a uniform generator (Box–Muller). */
export function normalSampler(rng: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rng(); // (0, 1]
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export type Distribution = 'normal' | 'offset' | 'pixels' | 'constant' | 'tiny' | 'mixed';
export const DISTRIBUTIONS: readonly Distribution[] = ['normal', 'offset', 'pixels', 'constant', 'tiny', 'mixed'];

/**
 * `n` float32 samples of a distribution:
 * normal N(0, 1); offset 1e4 + N(0, 1); pixels integers 0..255; constant one value (drawn
 * from the seed) everywhere; tiny 1e-30 · N(0, 1); mixed a per-element draw among N(0, 1),
 * 1e3 · N(0, 1), 1e-3 · N(0, 1), exact zeros and 5 + N(0, 1).
 */
export function generate(dist: Distribution, n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const normal = normalSampler(rng);
  const out = new Float32Array(n);
  switch (dist) {
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = normal();
      break;
    case 'offset':
      for (let i = 0; i < n; i++) out[i] = 1e4 + normal();
      break;
    case 'pixels':
      for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256);
      break;
    case 'constant':
      out.fill(Math.fround(-3 + 10 * rng()));
      break;
    case 'tiny':
      for (let i = 0; i < n; i++) out[i] = 1e-30 * normal();
      break;
    case 'mixed':
      for (let i = 0; i < n; i++) {
        const k = Math.floor(rng() * 5);
        out[i] = k === 0 ? normal() : k === 1 ? 1e3 * normal() : k === 2 ? 1e-3 * normal() : k === 3 ? 0 : 5 + normal();
      }
      break;
  }
  return out;
}

/** Per-channel (or per-element) affine parameters: weight around 1 with either sign, bias N(0, 1). */
export function affineParams(n: number, seed: number): { weight: Float32Array; bias: Float32Array } {
  const rng = mulberry32(seed);
  const normal = normalSampler(rng);
  const weight = Float32Array.from({ length: n }, () => (rng() < 0.2 ? -1 : 1) * (0.5 + rng()));
  const bias = Float32Array.from({ length: n }, () => normal());
  return { weight, bias };
}

/** Product of dims. */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Max |a - e| / |e| over elements: relative error where the reference is nowhere 0. */
export const maxRelative = (a: ArrayLike<number>, e: ArrayLike<number>): number => {
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]) / Math.abs(e[i]));
  return worst;
};

const codeOfError = (e: unknown): string => (e instanceof NormGpuError ? e.code : `not a NormGpuError: ${String(e)}`);

/** The NormGpuError code `fn` throws, or what it threw instead, or 'no error'. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return codeOfError(e);
  }
  return 'no error';
}

/** `errorCode` of an async `fn`. */
export async function asyncErrorCode(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return codeOfError(e);
  }
  return 'no error';
}
