/**
 * Planning of column statistics (dataset statistics and the feature scalers): chunk length of
 * column_stats.wgsl and the variant and slicing of each merge_stats.wgsl pass. Like gpu-plan,
 * it depends on shapes and adapter traits only, never on values, and keeps every dispatch
 * within maxComputeWorkgroupsPerDimension.
 */
import { linearGrid, type AdapterTraits } from './gpu-plan';

export const COLUMN_WG = 64;
export const MERGE_WG = 64;
/**
 * Rows one column_stats invocation folds serially. Welford's float32 rounding grows like the
 * square root of the run, so 64 rows keep the relative error of M2 near 1e-7 (std better),
 * and the chunks' partials then merge in a tree.
 */
export const CHUNK_ROWS = 64;
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
  rowsPerChunk: number;
  chunks: number;
  workgroups: [number, number, number];
  /** Leave NaN values out (column_stats.wgsl's SKIP_NAN: each column counts its non-NaN values). */
  skipNaN: boolean;
  /** Merges the chunks of each column into one partial ([1, J, W] -> [1, 1, W]); null for one chunk. */
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
  const maxDim = traits.maxWorkgroupsPerDim;
  const rowsPerChunk = Math.min(rows, CHUNK_ROWS);
  const chunks = Math.ceil(rows / rowsPerChunk);
  const [gy, gz] = linearGrid(chunks, 1, maxDim);
  return {
    rows, width, rowsPerChunk, chunks,
    workgroups: [Math.min(Math.ceil(width / COLUMN_WG), maxDim), gy, gz],
    skipNaN,
    columnMerge: chunks > 1 ? planMerge(1, chunks, width, traits, true) : null,
    groupMerge: groups ? planMerge(groups[0], groups[1], groups[2], traits, false) : null,
  };
}
