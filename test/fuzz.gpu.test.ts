/**
 * Seeded GPU-vs-CPU fuzz over every op and all three kernel families (`kernels: 'auto' |
 * 'parallel' | 'serial'`), against the float64 CPU backend: random ranks 2–5, both layouts,
 * odd and vec4 sizes, groups from 1 to 100k elements, hard data (offsets, constants, 1e-30,
 * 1e18, NaN/±Inf) and invalid arguments (both backends must throw the same NormGpuError code).
 * Case generator, tolerance and runner: test/support/fuzz.ts.
 *
 *   npm test                     10,000 cases of the default seed (CI)
 *   npm run fuzz                 the full run: 100,000 cases of a new random seed (printed)
 *   FUZZ_SEED=7 FUZZ_CASES=50000 npx vitest run test/fuzz.gpu.test.ts
 *   FUZZ_SEED=… FUZZ_CASE=12,345 npx vitest run test/fuzz.gpu.test.ts    replay cases, verbose
 *
 * A mismatch prints its case (op, shape, layout, options, data, kernel family, seed, index)
 * with the replay command.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, type Engine, type KernelChoice, type OpName } from '../src/index';
import {
  FAMILIES, describeCase, inputsOf, makeCase, runBatch, startCase, type Family, type FuzzCase, type Outcome, type SizeClass,
} from './support/fuzz';
import { makeGpuEngine } from './support/gpu';
import { grouping } from './support/reference';

const DEFAULT_SEED = 20240612;
const env = process.env;
const SEED = env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 32) : Number(env.FUZZ_SEED ?? DEFAULT_SEED);
const COUNT = Number(env.FUZZ_CASES ?? 10_000);
const ONLY = env.FUZZ_CASE?.split(',').map(Number);
/** Cases per test (one report line each) and per batch whose reads are awaited together. */
const CHUNK = 1000;
const BATCH = 128;
/** Mismatches printed per failing chunk. */
const SHOWN = 40;

if (!Number.isInteger(SEED) || SEED < 0 || SEED >= 2 ** 32 || !Number.isInteger(COUNT) || COUNT < 1 ||
  ONLY?.some((i) => !Number.isInteger(i) || i < 0)) {
  throw new Error(`bad FUZZ_SEED=${env.FUZZ_SEED} / FUZZ_CASES=${env.FUZZ_CASES} / FUZZ_CASE=${env.FUZZ_CASE}`);
}

let cpu: Engine;
let gpus: Record<Family, Engine>;
/** What the run exercised: cases per op and family, classes, data, kernels, thrown codes. */
const tally = new Map<string, number>();
const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);

beforeAll(async () => {
  console.log(`[fuzz] seed ${SEED}, ${ONLY ? `cases ${ONLY.join(',')}` : `${COUNT} cases`}`);
  cpu = await createEngine({ backend: 'cpu' });
  // One device for the three families: stages they share compile once (SwiftShader compiles
  // slowly). The forced families plan the same on a given device as on their own.
  const auto = await makeGpuEngine({ kernels: 'auto' });
  gpus = {
    auto,
    parallel: await makeGpuEngine({ kernels: 'parallel', device: auto.device! }),
    serial: await makeGpuEngine({ kernels: 'serial', device: auto.device! }),
  };
});

afterAll(() => {
  // The auto engine owns the device: last.
  gpus?.parallel.dispose();
  gpus?.serial.dispose();
  gpus?.auto.dispose();
  cpu?.dispose();
});

/** Record the kernels of one GPU call: variant per family, and multi-workgroup reductions. */
function notePlan(c: FuzzCase, kernels: KernelChoice[]): void {
  for (const k of kernels) {
    const variant = k.variant.split('+')[0];
    count(`kernel ${c.family} ${k.stage}:${variant}`);
    // The rows variant splits a group over workgroups along x, the columns variant along y.
    const split = variant === 'rows' ? k.workgroups[0] : variant === 'columns' ? k.workgroups[1] : 1;
    if (k.stage === 'reduceStats' && split > 1) count(`kernel ${c.family} ${k.stage}:${variant} split`);
  }
  const { groups } = grouping(c.op, c.shape, c.layout, c);
  if (c.shape.reduce((a, b) => a * b, 1) / groups >= 70_000) count(`ran ${c.family} group >= 70000`);
}

function noteOutcome(c: FuzzCase, cpuOutcome: Outcome): void {
  count(`cases ${c.op} ${c.family}`);
  count(`class ${c.sizeClass} ${c.family}`);
  count(`data ${c.data}`);
  count(`layout ${c.layout}`);
  count(`rank ${c.shape.length}`);
  if (c.specials.length) count('specials');
  if ('error' in cpuOutcome) count(`threw ${c.op} ${cpuOutcome.error}`);
  else {
    count(`ran ${c.op} ${c.family}`);
    if (c.op === 'batchNorm') count(`ran batchNorm ${c.training ? 'training' : 'inference'} running=${c.running ?? 'none'}`);
    if (c.op === 'batchNorm' && c.training && c.running && c.shape[0] === 1) count(`ran batchNorm training running N=1 ${c.family}`);
    if (c.normalizedShape) count(`ran ${c.op} normalizedShape rank ${c.normalizedShape.length}`);
  }
}

async function run(cases: FuzzCase[]): Promise<string[]> {
  const lines: string[] = [];
  for (let i = 0; i < cases.length; i += BATCH) {
    const batch = cases.slice(i, i + BATCH);
    const mismatches = await runBatch(gpus, cpu, batch, { plan: notePlan, outcome: noteOutcome });
    lines.push(...mismatches.map((m) => `${describeCase(m.c)}\n    ${m.what}`));
  }
  return lines;
}

function report(): string {
  const ops: OpName[] = ['batchNorm', 'layerNorm', 'rmsNorm', 'instanceNorm', 'groupNorm', 'moments'];
  const row = (op: string) => FAMILIES.map((f) => String(tally.get(`cases ${op} ${f}`) ?? 0).padStart(9)).join('');
  const table = [`${'op'.padEnd(13)}${FAMILIES.map((f) => f.padStart(9)).join('')}`, ...ops.map((op) => `${op.padEnd(13)}${row(op)}`)];
  const rest = [...tally].filter(([k]) => !k.startsWith('cases ')).sort().map(([k, n]) => `  ${k}: ${n}`);
  return `[fuzz] seed ${SEED}: cases per op and kernel family\n${table.join('\n')}\n${rest.join('\n')}`;
}

if (ONLY) {
  test(`replay of cases ${ONLY.join(',')} (seed ${SEED})`, async () => {
    const cases = ONLY.map((i) => makeCase(SEED, i));
    for (const c of cases) {
      console.log(describeCase(c));
      const inp = inputsOf(c);
      const show = async (e: Engine) => {
        const o = await startCase(e, c, inp, (k) => console.log(`  ${e.backend} kernels: ${JSON.stringify(k)}`));
        if ('error' in o) return o.message;
        return Object.entries(o.outputs).map(([k, v]) => `${k}=[${Array.from(v.slice(0, 8)).join(', ')}${v.length > 8 ? ', …' : ''}]`).join(' ');
      };
      console.log(`  cpu: ${await show(cpu)}`);
      console.log(`  gpu: ${await show(gpus[c.family])}`);
    }
    expect(await run(cases)).toEqual([]);
  });
} else {
  const chunks = Array.from({ length: Math.ceil(COUNT / CHUNK) }, (_, k) => [k * CHUNK, Math.min(COUNT, (k + 1) * CHUNK)] as const);

  describe(`GPU matches the CPU backend on seeded random cases (seed ${SEED})`, () => {
    test.each(chunks)('cases %i to %i', async (from, to) => {
      const t0 = performance.now();
      const mismatches = await run(Array.from({ length: to - from }, (_, i) => makeCase(SEED, from + i)));
      console.log(`[fuzz] cases ${from}–${to - 1}: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${mismatches.length} mismatch(es)`);
      expect(mismatches.length, `${mismatches.length} mismatch(es):\n${mismatches.slice(0, SHOWN).join('\n')}`).toBe(0);
    });

    // The sizes and options above must keep reaching every kernel; at the CI size or more.
    if (COUNT >= 10_000) {
      test('the run exercised every op, family, size class, data kind and kernel variant', () => {
        console.log(report());
        const missing: string[] = [];
        const need = (key: string, min = 1) => {
          if ((tally.get(key) ?? 0) < min) missing.push(`${key} (${tally.get(key) ?? 0} < ${min})`);
        };
        const classes: SizeClass[] = ['odd', 'vec4', 'wide', 'multi', 'huge', 'many'];
        for (const f of FAMILIES) {
          for (const op of ['batchNorm', 'layerNorm', 'rmsNorm', 'instanceNorm', 'groupNorm', 'moments']) need(`ran ${op} ${f}`, 100);
          for (const k of classes) need(`class ${k} ${f}`, k === 'huge' ? 3 : 50);
          need(`ran ${f} group >= 70000`);
          need(`ran batchNorm training running N=1 ${f}`, 20);
        }
        for (const d of ['normal', 'offset', 'pixels', 'constant', 'tiny', 'huge', 'mixed']) need(`data ${d}`, 100);
        for (const l of ['channels-first', 'channels-last']) need(`layout ${l}`, 1000);
        for (const r of [2, 3, 4, 5]) need(`rank ${r}`, 500);
        need('specials', 500);
        for (const r of ['training running=tensor', 'training running=none', 'inference running=host', 'inference running=tensor']) {
          need(`ran batchNorm ${r}`, 100);
        }
        for (const n of [1, 2, 3]) need(`ran layerNorm normalizedShape rank ${n}`, 50);
        need('threw moments INVALID_AXES', 20);
        for (const code of ['INVALID_EPS', 'TOO_FEW_VALUES', 'PARAM_LENGTH_MISMATCH', 'NORMALIZED_SHAPE_MISMATCH']) {
          if (![...tally.keys()].some((k) => k.startsWith('threw ') && k.endsWith(` ${code}`))) missing.push(`a case throwing ${code}`);
        }
        for (const k of ['normalizeRows:fused-rows', 'reduceStats:rows split', 'reduceStats:columns split', 'applyNorm:vec4-pixels', 'applyNorm:scalar']) {
          need(`kernel parallel ${k}`, 10);
        }
        for (const k of ['normalizeSerial:fused-serial', 'reduceStats:serial', 'applyNorm:scalar']) need(`kernel serial ${k}`, 10);
        need('kernel auto normalizeSerial:fused-serial', 10);
        expect(missing, report()).toEqual([]);
      });
    }
  });
}
