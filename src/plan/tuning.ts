/**
 * Autotuning's table: which kernel family won, by measurement, for each (adapter, op family,
 * shape class), with the figures behind the choice. Plain JSON in and out (`engine.tuning()`,
 * `createEngine({ tuning })`); the GPU backend times the candidates (src/gpu/tuning.ts).
 *
 * A shape class buckets a call by log2 of its group count, group size and contiguous run
 * length, plus its op, statistics mode and row layout: calls of one class plan alike, so the
 * winner measured on one shape serves the others. Every candidate computes the same function
 * within the accuracy bar, so a table (even one measured on another machine) can only change
 * speed, never results.
 */
import { check } from '../errors';
import { describe } from './checks';
import { planGpu, type AdapterTraits, type GpuPlan } from './gpu-plan';
import type { NormSpec } from './spec';
import { groupCount, groupSize } from './view';

/** A kernel family the planner can be asked for (EngineOptions.kernels). */
export type KernelFamily = AdapterTraits['prefer'];

export const KERNEL_FAMILIES: readonly KernelFamily[] = ['auto', 'serial', 'parallel'];

export const TUNING_FORMAT = 'normgpu-tuning/1';

/** What tuning one shape class measured. */
export interface TuningEntry {
  /** The family that won: the fastest median among the candidates timed. */
  variant: KernelFamily;
  /** Median milliseconds per call of each candidate timed (families that plan alike are timed once). */
  ms: Partial<Record<KernelFamily, number>>;
  /** GPU timestamp queries, or wall clock from submit to onSubmittedWorkDone. */
  timer: 'timestamp' | 'wall';
  /** Timed runs in all (a warm-up run of each candidate comes first and is not counted). */
  runs: number;
  /** The shape the figures were measured on. */
  shape: string;
  /** The time budget ran out before every candidate had all its timed runs. */
  truncated: boolean;
}

/** `engine.tuning()`: entries by adapter (see `adapterKey`), then by shape class. */
export interface TuningJSON {
  format: typeof TUNING_FORMAT;
  adapters: Record<string, Record<string, TuningEntry>>;
}

/** What `engine.explain(...).tuning` reports. */
export interface TuningChoice {
  /** The shape class. */
  key: string;
  /** The family the call plans with. */
  variant: KernelFamily;
  /**
   * `measured` by this engine, `imported` from `createEngine({ tuning })` or the store (used
   * without timing), `pending` (being measured: the default runs meanwhile), `untuned` (the
   * planner's default; autotune off or not yet used).
   */
  source: 'measured' | 'imported' | 'pending' | 'untuned';
  /** The entry behind a measured or imported choice. */
  entry?: TuningEntry;
}

/** What a backend that can tune offers the engine (null on the CPU backend). */
export interface Tuner {
  /** The family a call of `spec` plans with now, and why; null when `kernels` forces one. */
  choice(spec: NormSpec): TuningChoice | null;
  /** A call of `spec` is being made: with autotune on, measure its class in the background once. */
  use(spec: NormSpec): void;
  /** With autotune on, measure the class of `spec` now unless it has an entry (resolves when done). */
  tune(spec: NormSpec): Promise<void>;
}

/** Default `autotune.budgetMs`. */
export const DEFAULT_TUNING_BUDGET_MS = 500;

/** How an engine tunes: made by `createEngine`, shared by the backends the engine makes. */
export interface TunerConfig {
  autotune: boolean;
  /** No trial run starts once this many milliseconds have passed since a class's tuning began. */
  budgetMs: number;
  table: TuningTable;
  /** Called after each class measured (persists the table). */
  onTuned?(): void;
}

const bucket = (n: number) => Math.ceil(Math.log2(n));

/** The shape class of a call: op, statistics mode, row layout, vec4 runs, log2 buckets. */
export function shapeClass(spec: NormSpec): string {
  const v = spec.view;
  const mode = spec.updateRunning ? `${spec.mode}+running` : spec.mode;
  return `${spec.op}.${mode}.${spec.rows.kind}.${v.s % 4 === 0 ? 'v4' : 'v1'}.g${bucket(groupCount(v))}.m${bucket(groupSize(v))}.s${bucket(v.s)}`;
}

/** The candidates of a call: each family whose plan differs from the ones before it ('auto' first). */
export function tuningCandidates(spec: NormSpec, traits: AdapterTraits): { variant: KernelFamily; plan: GpuPlan }[] {
  const seen = new Set<string>();
  const out: { variant: KernelFamily; plan: GpuPlan }[] = [];
  for (const variant of KERNEL_FAMILIES) {
    const plan = planGpu(spec, { ...traits, prefer: variant });
    const signature = JSON.stringify(plan);
    if (seen.has(signature)) continue;
    seen.add(signature);
    out.push({ variant, plan });
  }
  return out;
}

function checkEntry(e: unknown, where: string): TuningEntry {
  const o = e as Partial<TuningEntry> | null;
  check(o !== null && typeof o === 'object', 'INVALID_ARGUMENT', `${where} must be an object, got ${describe(e)}`);
  check(KERNEL_FAMILIES.includes(o.variant as KernelFamily), 'INVALID_ARGUMENT', `${where}.variant must be one of ${KERNEL_FAMILIES.join(', ')}, got ${describe(o.variant)}`);
  check(o.ms !== null && typeof o.ms === 'object', 'INVALID_ARGUMENT', `${where}.ms must be an object, got ${describe(o.ms)}`);
  for (const [k, v] of Object.entries(o.ms!)) {
    check(KERNEL_FAMILIES.includes(k as KernelFamily) && typeof v === 'number' && v >= 0, 'INVALID_ARGUMENT', `${where}.ms.${k} must be a family's milliseconds, got ${describe(v)}`);
  }
  check(o.timer === 'timestamp' || o.timer === 'wall', 'INVALID_ARGUMENT', `${where}.timer must be 'timestamp' or 'wall', got ${describe(o.timer)}`);
  return {
    variant: o.variant!, ms: { ...o.ms }, timer: o.timer!, runs: Number(o.runs ?? 0), shape: String(o.shape ?? ''), truncated: !!o.truncated,
  };
}

/** Validate a tuning table given by a user (`createEngine({ tuning })`, a store): INVALID_ARGUMENT naming the field. */
export function checkTuningJSON(json: unknown, name = 'tuning'): TuningJSON {
  const o = json as Partial<TuningJSON> | null;
  check(o !== null && typeof o === 'object', 'INVALID_ARGUMENT', `${name} must be a table from engine.tuning(), got ${describe(json)}`);
  check(o.format === TUNING_FORMAT, 'INVALID_ARGUMENT', `${name}.format must be '${TUNING_FORMAT}', got ${describe(o.format)}`);
  check(o.adapters !== null && typeof o.adapters === 'object', 'INVALID_ARGUMENT', `${name}.adapters must be an object, got ${describe(o.adapters)}`);
  const adapters: TuningJSON['adapters'] = {};
  for (const [adapter, entries] of Object.entries(o.adapters!)) {
    check(entries !== null && typeof entries === 'object', 'INVALID_ARGUMENT', `${name}.adapters[${JSON.stringify(adapter)}] must be an object`);
    adapters[adapter] = {};
    for (const [key, e] of Object.entries(entries)) adapters[adapter][key] = checkEntry(e, `${name}.adapters[${JSON.stringify(adapter)}][${JSON.stringify(key)}]`);
  }
  return { format: TUNING_FORMAT, adapters };
}

/**
 * The winners an engine knows, measured or imported, for every adapter it has seen; shared by
 * the backends an engine makes (a recreated device keeps its table).
 */
export class TuningTable {
  readonly #entries = new Map<string, { entry: TuningEntry; source: 'measured' | 'imported' }>();

  /** Imported entries (already checked) replace what the table had for their keys. */
  merge(json: TuningJSON, source: 'measured' | 'imported' = 'imported'): void {
    for (const [adapter, entries] of Object.entries(json.adapters)) {
      for (const [key, entry] of Object.entries(entries)) this.#entries.set(`${adapter}\n${key}`, { entry, source });
    }
  }

  get(adapter: string, key: string): { entry: TuningEntry; source: 'measured' | 'imported' } | undefined {
    return this.#entries.get(`${adapter}\n${key}`);
  }

  set(adapter: string, key: string, entry: TuningEntry): void {
    this.#entries.set(`${adapter}\n${key}`, { entry, source: 'measured' });
  }

  toJSON(): TuningJSON {
    const adapters: TuningJSON['adapters'] = {};
    for (const [k, { entry }] of this.#entries) {
      const [adapter, key] = k.split('\n');
      (adapters[adapter] ??= {})[key] = { ...entry, ms: { ...entry.ms } };
    }
    return { format: TUNING_FORMAT, adapters };
  }
}
