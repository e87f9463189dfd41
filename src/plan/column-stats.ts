/**
 * Planning of column statistics (dataset statistics and the feature scalers): stage 1 of the
 * normalization path (chooseReduce) over a [rows, width] view whose groups are the columns,
 * then the variant and slicing of each merge_stats.wgsl pass. Like gpu-plan, it depends on
 * shapes and adapter traits only, never on values, and keeps every dispatch within
 * maxComputeWorkgroupsPerDimension.
 */
import mergeStats from '../../shaders/merge_stats.wgsl?raw';
import scaleFeatures from '../../shaders/scale_features.wgsl?raw';
import welford from '../../shaders/welford.wgsl?raw';
import type { KernelDef } from '../stage-def';
import { chooseReduce, linearGrid, type AdapterTraits, type ReducePlan } from './gpu-plan';

/** The stages of column statistics and the scalers beyond stage 1 (see src/stage-def.ts). */
export interface ColumnKernels {
  /** Chan merge of column partials: `main_serial` and `main_tree`. */
  readonly mergeSerial: KernelDef;
  readonly mergeTree: KernelDef;
  /** Per-feature affine of the scalers' transform and inverse transform. */
  readonly scaleFeatures: KernelDef;
}

const mergeStage = (entryPoint: string): KernelDef => ({
  name: 'merge_stats', sources: [welford, mergeStats], entryPoint, bindings: ['uniform', 'read', 'read', 'write', 'write'],
});

export const COLUMN_KERNELS: ColumnKernels = {
  mergeSerial: mergeStage('main_serial'),
  mergeTree: mergeStage('main_tree'),
  scaleFeatures: { name: 'scale_features', sources: [scaleFeatures], entryPoint: 'main', bindings: ['uniform', 'read', 'read', 'write'] },
};

export const MERGE_WG = 64;
/** Longest slice the serial merge walks; longer ones use the tree variant (or more slices). */
const SERIAL_SLICE = 64;
/** Partials one invocation of the tree variant merges serially before the tree. */
const TREE_PER_INVOCATION = 16;

/** One merge_stats pass: [A, B, C] partials to [A, S, C], S slices of sliceLen. */
export interface MergePlan {
  a: number;
  b: number;
  c: number;
  slices: number;
  sliceLen: number;
  tree: boolean;
  workgroups: [number, number, number];
}

export interface ColumnStatsPlan {
  rows: number;
  width: number;
  /**
   * Stage 1 over the view [1, rows, width, 1]: reduce_stats_serial.wgsl or
   * reduce_stats_columns.wgsl with RANGES (and SKIP_NAN), partials laid out [r1, width, r2].
   */
  reduce: ReducePlan;
  /** Leave NaN values out (SKIP_NAN: each column counts its non-NaN values). */
  skipNaN: boolean;
  /** Merges the partials of each column into one; null where stage 1 wrote one per column. */
  columnMerge: MergePlan | null;
  /** Merges the per-column partials in groups ([A, B, C] -> [A, S, C]), if asked for. */
  groupMerge: MergePlan | null;
}

/** A merge pass of `[a, b, c]`; `slices` forced to 1 when one partial per output is needed. */
export function planMerge(a: number, b: number, c: number, traits: AdapterTraits, oneSlice: boolean): MergePlan {
  const maxDim = traits.maxWorkgroupsPerDim;
  // Serial for short merges, and where the adapter prefers long loops to barriers (software
  // adapters) as long as the slices may stay short. One long slice always takes the tree: its
  // rounding grows with log(B) instead of B.
  const preferSerial = traits.prefer === 'serial' || (traits.prefer === 'auto' && traits.software);
  if (b <= SERIAL_SLICE || (preferSerial && !oneSlice)) {
    const sliceLen = Math.min(b, SERIAL_SLICE);
    const slices = Math.ceil(b / sliceLen);
    return { a, b, c, slices, sliceLen, tree: false, workgroups: linearGrid(a * slices * c, MERGE_WG, maxDim) };
  }
  const sliceLen = oneSlice ? b : Math.min(b, MERGE_WG * TREE_PER_INVOCATION);
  const slices = Math.ceil(b / sliceLen);
  return { a, b, c, slices, sliceLen, tree: true, workgroups: linearGrid(a * slices * c, 1, maxDim) };
}

/**
 * Statistics of the columns of a row-major [rows, width] matrix; `groups` = [A, B, C] also
 * merges the per-column partials, viewed as A x B x C (width = A*B*C), over B.
 */
export function planColumnStats(
  rows: number, width: number, traits: AdapterTraits, groups?: readonly [number, number, number], skipNaN = false,
): ColumnStatsPlan {
  const view = { o: 1, p: rows, q: width, s: 1 };
  let reduce = chooseReduce(view, traits);
  // The rows variant (no RANGES or SKIP_NAN) is taken by S = 1 views only where the columns
  // variant's tiles exceed maxDim^2: far wider than a binding holds at the 65535 every
  // adapter offers. Serial covers any width.
  if (reduce.variant === 'rows') reduce = chooseReduce(view, { ...traits, prefer: 'serial' });
  // [r1, width, r2] with S = 1: one of r1 (row chunks, columns variant) and r2 (chunks, serial) is 1.
  const columnMerge = reduce.r1 > 1 ? planMerge(1, reduce.r1, width, traits, true)
    : reduce.r2 > 1 ? planMerge(width, reduce.r2, 1, traits, true) : null;
  return {
    rows, width, reduce, skipNaN, columnMerge,
    groupMerge: groups ? planMerge(groups[0], groups[1], groups[2], traits, false) : null,
  };
}
