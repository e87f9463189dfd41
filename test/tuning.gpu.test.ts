/**
 * Autotuning: off by default; with `autotune` on, `engine.prepare` measures a shape class once
 * and later calls plan with the winner; the table round-trips as JSON, an imported or stored
 * table is used without timing, results stay within the accuracy bar of the untuned ones, and
 * the time bound holds (loosely: wall time on a shared CPU, never a ratio).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'webgpu';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, type Engine, type TuningJSON, type TuningStore } from '../src/index';
import { generate, makeGpuEngine, trackGpuWork, withValidation } from './support/gpu';

const SHAPE = [64, 256];
const OPTIONS = { normalizedShape: 256, weight: Float32Array.from({ length: 256 }, (_, i) => 1 + i / 256) };
const DATA = generate('offset', 64 * 256, 31);

let cpu: Engine;
let untuned: Engine;
let reference: Float32Array;
const dir = mkdtempSync(join(tmpdir(), 'normgpu-tuning-'));

beforeAll(async () => {
  cpu = await createEngine({ backend: 'cpu' });
  untuned = await makeGpuEngine();
  const x = cpu.tensor(DATA, SHAPE);
  reference = await cpu.layerNorm(x, OPTIONS).read();
});

afterAll(() => {
  cpu.dispose();
  untuned.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const scaledError = (a: Float32Array, e: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i]) / (1 + Math.abs(e[i]))), 0);

async function layerNorm(engine: Engine): Promise<Float32Array> {
  return withValidation(engine, async () => {
    const x = engine.tensor(DATA, SHAPE);
    const y = await engine.layerNorm(x, OPTIONS).read();
    x.dispose();
    return y;
  });
}

function explain(engine: Engine) {
  const x = engine.tensor(DATA, SHAPE);
  const e = engine.explain('layerNorm', x, OPTIONS);
  x.dispose();
  return e;
}

describe('autotune', () => {
  test('off by default: the planner decides, nothing is measured, the table is empty', async () => {
    const e = explain(untuned);
    expect(e.tuning).toMatchObject({ variant: 'auto', source: 'untuned' });
    expect(untuned.tuning()).toEqual({ format: 'normgpu-tuning/1', adapters: {} });
    await untuned.prepare('layerNorm', SHAPE, OPTIONS);
    expect(explain(untuned).tuning?.source).toBe('untuned');
    expect(scaledError(await layerNorm(untuned), reference)).toBeLessThanOrEqual(1e-5);
  });

  test('prepare measures the class once, within the bound; explain shows the figures; results stay within the bar', async () => {
    const budgetMs = 3000; // compiling the rows kernel alone takes a few hundred ms on a loaded SwiftShader
    const engine = await makeGpuEngine({ autotune: { budgetMs } });
    try {
      expect(explain(engine).tuning?.source).toBe('untuned');
      await engine.prepare('layerNorm', SHAPE, OPTIONS); // compiles the default first, outside the tuning
      const started = performance.now();
      const x = engine.tensor(DATA, SHAPE);
      await engine.prepare('layerNorm', SHAPE, OPTIONS);
      const elapsed = performance.now() - started;
      const e = engine.explain('layerNorm', x, OPTIONS);
      x.dispose();
      expect(e.tuning?.source).toBe('measured');
      const entry = e.tuning!.entry!;
      // SwiftShader plans two different families here: the serial fused kernel and the rows kernel.
      expect(Object.keys(entry.ms).sort()).toEqual(['auto', 'parallel']);
      expect(entry.timer).toBe(engine.device!.features.has('timestamp-query') ? 'timestamp' : 'wall');
      expect(entry.runs).toBeGreaterThan(0);
      expect(entry.variant).toBe(entry.ms.auto! <= entry.ms.parallel! ? 'auto' : 'parallel');
      expect(e.kernels[0].variant).toBe(entry.variant === 'parallel' ? 'fused-rows' : 'fused-serial');
      // The bound: the budget plus one run of a candidate (milliseconds here) plus compilation;
      // checked loosely, as the CPU is shared with other work.
      expect(elapsed).toBeLessThan(budgetMs + 5000);
      // A second prepare measures nothing.
      const again = trackGpuWork(engine);
      await engine.prepare('layerNorm', SHAPE, OPTIONS);
      again.restore();
      expect(again.log.filter((l) => l.includes('autotune'))).toEqual([]);
      expect(scaledError(await layerNorm(engine), reference)).toBeLessThanOrEqual(1e-5);
      expect(scaledError(await layerNorm(engine), await layerNorm(untuned))).toBeLessThanOrEqual(1e-5);
    } finally {
      engine.dispose();
    }
  });

  test('a budget of 0 starts no trial run', async () => {
    const engine = await makeGpuEngine({ autotune: { budgetMs: 0 } });
    try {
      await engine.prepare('layerNorm', SHAPE, OPTIONS);
      expect(explain(engine).tuning).toMatchObject({ source: 'measured', variant: 'auto', entry: { runs: 0, truncated: true, ms: {} } });
    } finally {
      engine.dispose();
    }
  });

  test('the first call measures in the background; later calls use the winner', async () => {
    const engine = await makeGpuEngine({ autotune: true });
    try {
      const first = await layerNorm(engine);
      expect(['pending', 'measured']).toContain(explain(engine).tuning?.source);
      await engine.prepare('layerNorm', SHAPE, OPTIONS); // waits for the measurement under way
      expect(explain(engine).tuning?.source).toBe('measured');
      expect(scaledError(first, reference)).toBeLessThanOrEqual(1e-5);
      expect(scaledError(await layerNorm(engine), reference)).toBeLessThanOrEqual(1e-5);
    } finally {
      engine.dispose();
    }
  });
});

describe('the tuning table', () => {
  let table: TuningJSON;
  let key: string;
  let adapter: string;

  beforeAll(async () => {
    const engine = await makeGpuEngine({ autotune: true });
    await engine.prepare('layerNorm', SHAPE, OPTIONS);
    table = engine.tuning();
    key = explain(engine).tuning!.key;
    engine.dispose();
    adapter = Object.keys(table.adapters)[0];
  });

  test('is plain JSON that round-trips', async () => {
    expect(Object.keys(table.adapters)).toHaveLength(1);
    expect(table.adapters[adapter][key]).toBeDefined();
    const parsed = JSON.parse(JSON.stringify(table));
    expect(parsed).toEqual(table);
    const engine = await makeGpuEngine({ tuning: parsed });
    expect(engine.tuning()).toEqual(table);
    engine.dispose();
  });

  test('an imported table is used without timing, and every imported variant gives the same results', async () => {
    for (const variant of ['parallel', 'serial', 'auto'] as const) {
      const forced: TuningJSON = { ...table, adapters: { [adapter]: { [key]: { ...table.adapters[adapter][key], variant } } } };
      const engine = await makeGpuEngine({ tuning: forced, autotune: true });
      try {
        const work = trackGpuWork(engine);
        await engine.prepare('layerNorm', SHAPE, OPTIONS);
        const y = await layerNorm(engine);
        work.restore();
        expect(work.log.filter((l) => l.includes('autotune')), 'no trial run').toEqual([]);
        const e = explain(engine);
        expect(e.tuning).toMatchObject({ key, variant, source: 'imported', entry: forced.adapters[adapter][key] });
        expect(e.kernels[0].variant).toBe(variant === 'parallel' ? 'fused-rows' : 'fused-serial');
        expect(scaledError(y, reference)).toBeLessThanOrEqual(1e-5);
        expect(engine.tuning()).toEqual(forced);
      } finally {
        engine.dispose();
      }
    }
  });

  test('entries of another adapter are kept but not used', async () => {
    const other: TuningJSON = { format: 'normgpu-tuning/1', adapters: { 'acme/gpu/1/Acme': { [key]: { ...table.adapters[adapter][key], variant: 'parallel' } } } };
    const engine = await makeGpuEngine({ tuning: other });
    expect(explain(engine).tuning?.source).toBe('untuned');
    expect(engine.tuning()).toEqual(other);
    engine.dispose();
  });

  test('forced kernels ignore the table', async () => {
    const engine = await makeGpuEngine({ tuning: table, kernels: 'serial' });
    const e = explain(engine);
    expect(e.tuning).toBeNull();
    expect(e.kernels[0].variant).toBe('fused-serial');
    engine.dispose();
  });

  test('persists in a JSON file and in a store object', async () => {
    const file = join(dir, 'tuning.json');
    const a = await makeGpuEngine({ autotune: { store: file } });
    await a.prepare('layerNorm', SHAPE, OPTIONS);
    a.dispose();
    await new Promise((r) => setTimeout(r, 50)); // the save is asynchronous
    const saved = JSON.parse(readFileSync(file, 'utf8')) as TuningJSON;
    expect(saved.adapters[adapter][key]).toBeDefined();
    const b = await makeGpuEngine({ autotune: { store: file } });
    expect(explain(b).tuning).toMatchObject({ source: 'imported', entry: saved.adapters[adapter][key] });
    b.dispose();

    let kept: TuningJSON | null = null;
    const store: TuningStore = { load: () => kept, save: (t) => { kept = t; } };
    const c = await makeGpuEngine({ autotune: { store } });
    await c.prepare('layerNorm', SHAPE, OPTIONS);
    c.dispose();
    await new Promise((r) => setTimeout(r, 0));
    expect(kept!.adapters[adapter][key]).toBeDefined();
  });

  test('a wall-clock timer where the device has no timestamp queries', async () => {
    const dawn = create([]);
    (globalThis as { normgpuTuningGpu?: unknown }).normgpuTuningGpu = dawn; // see FACTS.md: keep the GPU object reachable
    const device = await (await dawn.requestAdapter())!.requestDevice({ label: 'no timestamps' });
    expect(device.features.has('timestamp-query')).toBe(false);
    const engine = await createEngine({ device, autotune: true });
    await engine.prepare('layerNorm', SHAPE, OPTIONS);
    expect(explain(engine).tuning).toMatchObject({ source: 'measured', entry: { timer: 'wall' } });
    expect(scaledError(await layerNorm(engine), reference)).toBeLessThanOrEqual(1e-5);
    engine.dispose();
    device.destroy();
  });

  test('bad options are typed errors before any GPU work', async () => {
    for (const [options, text] of [
      [{ tuning: { format: 'x', adapters: {} } }, 'tuning.format'],
      [{ tuning: { format: 'normgpu-tuning/1', adapters: { a: { k: { variant: 'fast', ms: {}, timer: 'wall' } } } } }, 'variant'],
      [{ autotune: { budgetMs: -1 } }, 'budgetMs'],
      [{ autotune: { store: 5 } }, 'autotune.store'],
      [{ autotune: 'yes' }, 'autotune'],
    ] as const) {
      await expect(createEngine({ backend: 'cpu', ...(options as object) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(text) });
    }
  });

  test('the CPU backend keeps the table and reports no tuning', async () => {
    const engine = await createEngine({ backend: 'cpu', tuning: table });
    expect(engine.tuning()).toEqual(table);
    expect(explain(engine).tuning).toBeNull();
    engine.dispose();
  });
});
