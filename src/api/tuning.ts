/**
 * Autotuning's options and persistence: where an engine's tuning table (src/plan/tuning.ts) is
 * kept across page loads and processes. A store holds the whole table (every adapter's
 * entries, each keyed by its adapter), so one file or browser item serves several machines.
 */
import { check } from '../errors';
import { describe } from '../plan/checks';
import { checkTuningJSON, DEFAULT_TUNING_BUDGET_MS, TuningTable, type TunerConfig, type TuningJSON } from '../plan/tuning';

/** Where a tuning table persists: your own (IndexedDB, a server...), or see `AutotuneOptions.store`. */
export interface TuningStore {
  /** The table saved last, or null when there is none. */
  load(): TuningJSON | null | Promise<TuningJSON | null>;
  /** Keep `table` (the engine's whole table, loaded entries included). */
  save(table: TuningJSON): void | Promise<void>;
}

/** `createEngine({ autotune })`. */
export interface AutotuneOptions {
  /**
   * Most milliseconds the tuning of one shape class may start runs for (compilation of its
   * candidates included): its cost is at most this plus one run of its slowest candidate.
   * Default: 500.
   */
  budgetMs?: number;
  /**
   * Keep the table across page loads or processes: a TuningStore, or a name, which is a JSON
   * file path in Node and a `localStorage` item in a browser. Loaded by `createEngine` (entries
   * given in `tuning` win), saved after each shape class is measured. Default: none.
   */
  store?: string | TuningStore;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** A store for a name: a JSON file in Node, a `localStorage` item in a browser. */
export function namedTuningStore(name: string): TuningStore {
  const storage = (globalThis as { localStorage?: Storage }).localStorage;
  if (!isNode && storage) {
    return {
      load: () => {
        const text = storage.getItem(name);
        return text === null ? null : JSON.parse(text) as TuningJSON;
      },
      save: (table) => storage.setItem(name, JSON.stringify(table)),
    };
  }
  // Through getBuiltinModule: a browser bundle of normgpu then holds no import of a Node builtin.
  const fs = async () => process.getBuiltinModule('node:fs/promises');
  return {
    load: async () => {
      const text = await (await fs()).readFile(name, 'utf8').catch((e: { code?: string }) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      return text === null ? null : JSON.parse(text) as TuningJSON;
    },
    save: async (table) => {
      // Written whole, then renamed: a reader never sees half a file.
      const f = await fs();
      const tmp = `${name}.${process.pid}.tmp`;
      await f.writeFile(tmp, `${JSON.stringify(table, null, 1)}\n`);
      await f.rename(tmp, name);
    },
  };
}

/**
 * Resolve `createEngine`'s `autotune` and `tuning` options into the engine's tuner config:
 * checks them (INVALID_ARGUMENT), loads the store, and imports `tuning` over it.
 */
export async function tunerConfig(autotune: unknown, tuning: unknown): Promise<TunerConfig> {
  check(
    autotune === undefined || typeof autotune === 'boolean' || (typeof autotune === 'object' && autotune !== null && !Array.isArray(autotune)),
    'INVALID_ARGUMENT', `autotune must be a boolean or { budgetMs, store }, got ${describe(autotune)}`,
  );
  const o: AutotuneOptions = typeof autotune === 'object' ? autotune as AutotuneOptions : {};
  const budgetMs = o.budgetMs ?? DEFAULT_TUNING_BUDGET_MS;
  check(typeof budgetMs === 'number' && budgetMs >= 0 && Number.isFinite(budgetMs), 'INVALID_ARGUMENT', `autotune.budgetMs must be a finite number >= 0, got ${describe(o.budgetMs)}`);
  const s = o.store;
  check(
    s === undefined || typeof s === 'string' || (typeof s === 'object' && s !== null && typeof s.load === 'function' && typeof s.save === 'function'),
    'INVALID_ARGUMENT', `autotune.store must be a file or item name, or { load, save }, got ${describe(s)}`,
  );
  const imported = tuning === undefined ? null : checkTuningJSON(tuning);
  const table = new TuningTable();
  const store = typeof s === 'string' ? namedTuningStore(s) : s;
  if (store) {
    // A store is a cache: one that cannot be read or holds something else is started afresh.
    try {
      const saved = await store.load();
      if (saved !== null) table.merge(checkTuningJSON(saved, 'the stored tuning table'));
    } catch (e) {
      console.warn(`normgpu: ignoring the stored tuning table: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (imported) table.merge(imported);
  return {
    autotune: autotune !== undefined && autotune !== false,
    budgetMs,
    table,
    onTuned: store && (() => {
      void Promise.resolve().then(() => store.save(table.toJSON())).catch((e: unknown) => {
        console.warn(`normgpu: could not save the tuning table: ${e instanceof Error ? e.message : String(e)}`);
      });
    }),
  };
}
