/**
 * Kernel choice and dispatch sizes for one call on one adapter. Chooses among the stage-1
 * variants by adapter class and view shape, keeps every dispatch within
 * maxComputeWorkgroupsPerDimension, and never depends on values of the data.
 */
import type { NormSpec } from './spec';
import { elementCount, groupCount, groupSize, type GroupView } from './view';

export interface AdapterTraits {
  /** CPU-backed adapter: few invocations with long serial loops win there. */
  software: boolean;
  subgroups: boolean;
  maxWorkgroupsPerDim: number;
  /** Forced kernel family, from EngineOptions.kernels. */
  prefer: 'auto' | 'parallel' | 'serial';
}

export type ReduceVariant = 'rows' | 'columns' | 'serial';

export interface ReducePlan {
  variant: ReduceVariant;
  /** Workgroup size of the dispatch. */
  wg: number;
  /**
   * Serial variant's entry in reduce_stats_serial.wgsl: `main_vec4` over float32 runs of 4k
   * floats, `main_vec4_columns` over float32 columns four at a time (rows of 4k floats).
   */
  entry: 'main' | 'main_vec4' | 'main_vec4_columns';
  /** The view the stage-1 kernel walks: the statistics view, or its columns as groups. */
  view: GroupView;
  workgroups: [number, number, number];
  /** Tile shape of the columns variant. */
  tx: number;
  ty: number;
  /** Elements (rows variant) or rows (columns variant) per workgroup along the group. */
  chunkLen: number;
  chunks: number;
  /** Partials per group, as finalize_stats walks them: R1 x R2. */
  r1: number;
  r2: number;
  partials: number;
  why: string;
}

export interface GpuPlan {
  /**
   * All stages in one dispatch: normalize_serial.wgsl (one invocation per group, software
   * adapters) or normalize_rows.wgsl (one workgroup per group held in registers, GPUs).
   */
  fused: { kernel: 'serial' | 'rows'; entry: string; wg: number; workgroups: [number, number, number]; why: string } | null;
  reduce: ReducePlan | null;
  finalize: { workgroups: [number, number, number] } | null;
  /**
   * `pairs`: apply_norm's main_pairs, one invocation per word of two float16 outputs. `run`:
   * vec4s per invocation of main_vec4_runs (channels-first vec4 rows on software adapters), else 0.
   */
  apply: { vec4: boolean; pairs: boolean; tw: number; run: number; workgroups: [number, number, number] } | null;
  /**
   * add_residual.wgsl before the staged stages: the sum x + residual (spec.residual), which they
   * then read instead of x; or, for `moments` with float16 outputs, after them, to round the
   * float32 mean and variance to halves (one dispatch each).
   */
  elementwise: { workgroups: [number, number, number] } | null;
  /**
   * The statistics stages rescue variances and mean squares whose float32 squares underflow
   * (welford.wgsl's RESCUE_TINY): only where eps is too small to hide them, since constant
   * groups then pay a second pass.
   */
  rescueTiny: boolean;
}

export const REDUCE_WG = 256;
export const SERIAL_WG = 64;
export const APPLY_WG = 256;
/** Below this eps a variance or mean square under 2^-100 changes rstd visibly (welford.wgsl's RESCUE_TINY). */
const TINY_EPS = 2 ** -60;
/** Enough workgroups in flight to fill any current GPU; more only adds merge work. */
const TARGET_WORKGROUPS = 4096;
/** Minimum elements per invocation before a group is split across more workgroups. */
const MIN_PER_INVOCATION = 8;
/** vec4 (or scalar) accesses per apply invocation: amortizes per-row index math. */
const APPLY_PER_INVOCATION = 8;
/** Most vec4s one invocation of apply_norm's main_vec4_runs takes from a plane. */
const APPLY_RUN = 16;
/** Rows per main_vec4_pixels invocation on software adapters. */
const APPLY_PIXEL_ROWS = 64;
/** Serial invocations that keep a CPU-backed adapter's cores and SIMD lanes busy. */
const SOFTWARE_LANES = 256;
/** Fewer groups than this, each at least FEW_GROUPS_MIN_SIZE, take the staged path on software adapters. */
const FEW_GROUPS = 32;
const FEW_GROUPS_MIN_SIZE = 4096;

/** Workgroups a serial dispatch keeps at least, so that every core of a small CPU-backed adapter gets some. */
const SERIAL_WORKGROUPS = 4;
/** Smallest serial workgroup: one SIMD vector of lanes on a CPU-backed adapter. */
const MIN_SERIAL_WG = 4;

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * The workgroup size of a one-invocation-per-group serial dispatch (normalize_serial.wgsl,
 * grad_serial.wgsl) of `invocations`: SERIAL_WG, halved (down to MIN_SERIAL_WG) while that
 * leaves fewer than SERIAL_WORKGROUPS workgroups. A CPU-backed adapter runs a workgroup on one
 * core: 64 BatchNorm channels in one workgroup of 64 left the other cores idle.
 */
export function serialWorkgroup(invocations: number): number {
  let wg = SERIAL_WG;
  while (wg > MIN_SERIAL_WG && invocations < SERIAL_WORKGROUPS * wg) wg /= 2;
  return wg;
}

/** Workgroups for `n` invocations of `wg` that index as x + y * (nwg.x * wg). */
export function linearGrid(n: number, wg: number, maxDim: number): [number, number, number] {
  const total = Math.max(1, ceilDiv(n, wg));
  const x = Math.min(total, maxDim);
  return [x, ceilDiv(total, x), 1];
}

/**
 * The stage-1 variant and dispatch for statistics of the groups of view `v`: the norms' and
 * moments' view, or a [rows, width] matrix whose groups are its columns (column statistics).
 */
export function chooseReduce(v: GroupView, a: AdapterTraits, float32Runs = false): ReducePlan {
  const groups = groupCount(v);
  const m = groupSize(v);
  const maxDim = a.maxWorkgroupsPerDim;
  const serial = (chunks: number, why: string, columns = false): ReducePlan => {
    // With `columns`, each of the S columns of a group is accumulated on its own, so that
    // neighbouring lanes read neighbouring floats; finalize merges the S x chunks partials.
    const walked = columns ? { o: v.o, p: v.p, q: v.q * v.s, s: 1 } : v;
    const rows = groupSize(walked);
    // main_vec4 walks whole vec4s: runs and chunks of 4k floats; main_vec4_columns rows of 4k.
    const vec4 = float32Runs && walked.s % 4 === 0;
    const columns4 = float32Runs && columns && walked.q % 4 === 0;
    const chunkLen = vec4 ? 4 * ceilDiv(rows / 4, chunks) : ceilDiv(rows, chunks);
    const n = ceilDiv(rows, chunkLen);
    const perGroup = columns ? v.s * n : n;
    const lanes = columns4 ? groupCount(walked) / 4 : groupCount(walked);
    // chunks already give every core lanes (SOFTWARE_LANES); smaller workgroups measured slower.
    return {
      variant: 'serial', entry: vec4 ? 'main_vec4' : columns4 ? 'main_vec4_columns' : 'main', wg: SERIAL_WG,
      view: walked, workgroups: linearGrid(lanes * n, SERIAL_WG, maxDim), tx: 0, ty: 0,
      chunkLen, chunks: n, r1: 1, r2: perGroup, partials: groups * perGroup, why,
    };
  };

  if (a.prefer === 'serial' || (a.prefer === 'auto' && a.software)) {
    // Enough lanes for every core, each with a long run of elements; short runs
    // (channels-last) are walked column by column.
    const columns = v.s < 4 && v.p > 1;
    // Columns walked four at a time (main_vec4_columns) make a quarter of the lanes.
    const lanes = columns ? (float32Runs && (v.q * v.s) % 4 === 0 ? groups * v.s / 4 : groups * v.s) : groups;
    const chunks = Math.max(1, Math.min(Math.ceil(SOFTWARE_LANES / lanes), Math.floor(m / 1024)));
    return serial(chunks, `software adapter: ${chunks} serial invocation(s) per ${columns ? 'column' : 'group'}, no barriers`, columns);
  }
  if (a.prefer === 'auto' && m <= 64) {
    return serial(1, 'small groups: packed one per invocation so no workgroup idles');
  }

  const width = v.q * v.s;
  const tx = Math.min(64, 2 ** Math.ceil(Math.log2(width)));
  const tiles = ceilDiv(width, tx);
  // Column tiles beyond maxDim fold into z with the blocks o (reduce_stats_columns.wgsl).
  const tilesX = Math.min(tiles, maxDim);
  const tilesZ = v.o * ceilDiv(tiles, tilesX);
  if (v.s < 32 && tilesZ <= maxDim) {
    const ty = REDUCE_WG / tx;
    const wanted = Math.max(1, Math.floor(TARGET_WORKGROUPS / (tiles * v.o)));
    const rowChunks = Math.min(ceilDiv(v.p, ty * MIN_PER_INVOCATION), wanted, maxDim);
    const chunkLen = ceilDiv(v.p, rowChunks);
    const chunks = ceilDiv(v.p, chunkLen);
    return {
      variant: 'columns', entry: 'main', wg: REDUCE_WG, view: v, workgroups: [tilesX, chunks, tilesZ], tx, ty, chunkLen, chunks,
      r1: chunks, r2: v.s, partials: v.o * chunks * width,
      why: `short runs (S=${v.s}): coalesced reads along rows, ${tx}x${ty} tiles`,
    };
  }

  const wanted = Math.max(1, Math.floor(TARGET_WORKGROUPS / groups));
  const split = Math.min(ceilDiv(m, REDUCE_WG * MIN_PER_INVOCATION), wanted, maxDim);
  const chunkLen = ceilDiv(ceilDiv(m, split), REDUCE_WG) * REDUCE_WG;
  const chunks = ceilDiv(m, chunkLen);
  const gy = Math.min(groups, maxDim);
  return {
    variant: 'rows', entry: 'main', wg: REDUCE_WG, view: v, workgroups: [chunks, gy, ceilDiv(groups, gy)], tx: 0, ty: 0, chunkLen, chunks,
    r1: 1, r2: chunks, partials: groups * chunks,
    why: `long runs (S=${v.s}): ${chunks} workgroup(s) per group of ${m}`,
  };
}

/** Largest group normalize_rows.wgsl holds in registers: WG invocations x K vec4s. */
const ROWS_MAX_GROUP = REDUCE_WG * 4 * 8;

/**
 * The vec4 entry a fused kernel can use for this spec, or null: runs of 4k floats whose affine
 * index is constant over each vec4 (spans) or advances with it, vec4-aligned (features).
 */
function vec4Entry(spec: NormSpec): 'spans' | 'features' | null {
  if (spec.view.s % 4 !== 0) return null;
  if (spec.paramS % 4 === 0) return 'spans';
  return spec.paramS === 1 && spec.paramQ % 4 === 0 ? 'features' : null;
}

/** Whether a call reads or writes float16 data (the vec4 entries are float32 only). */
const halfIo = (spec: NormSpec): boolean => spec.dtype === 'float16' || spec.outputDtype === 'float16';

function planFused(spec: NormSpec, a: AdapterTraits): GpuPlan['fused'] {
  if (spec.mode !== 'batch' && spec.mode !== 'rms') return null;
  const groups = groupCount(spec.view);
  const half = halfIo(spec);
  // Only normalize_serial's scalar entry takes halves (normalize_rows none); it writes them a
  // word at a time, so every run of a group must be whole words.
  const entry = half ? null : vec4Entry(spec);
  const serialFits = !half || spec.view.s % 2 === 0;
  // Runs shorter than a vec4 (channels-last) make every lane gather, and fewer groups than
  // lanes leave most of them idle; the staged path, whose statistics split groups, is faster.
  const fewGroups = groups < FEW_GROUPS && groupSize(spec.view) >= FEW_GROUPS_MIN_SIZE;
  // float32 channels-last rows of 4k: the staged vec4 stages (four columns per lane, then
  // main_vec4_pixels) beat one invocation per group walking runs of S.
  const pixels4 = !half && spec.rows.kind === 'pixels' && spec.rows.width % 4 === 0;
  if (serialFits && (a.prefer === 'serial' || (a.prefer === 'auto' && a.software && spec.view.s >= 4 && !fewGroups && !pixels4))) {
    const wg = serialWorkgroup(groups);
    return {
      kernel: 'serial', entry: entry ? `main_vec4_${entry}` : 'main', wg, workgroups: linearGrid(groups, wg, a.maxWorkgroupsPerDim),
      why: 'software adapter: one invocation per group, two passes, no barriers',
    };
  }
  const gpuShaped = a.prefer === 'parallel' || !a.software;
  // normalize_rows.wgsl has no running-statistics update (BatchNorm training with N = 1).
  if (gpuShaped && entry && spec.view.p === 1 && spec.view.s <= ROWS_MAX_GROUP && !spec.updateRunning) {
    const x = Math.min(groups, a.maxWorkgroupsPerDim);
    return {
      kernel: 'rows', entry: `main_${entry}`, wg: REDUCE_WG, workgroups: [x, ceilDiv(groups, x), 1],
      why: `contiguous groups of ${spec.view.s} held in registers: one read, one write`,
    };
  }
  return null;
}

export function planGpu(spec: NormSpec, a: AdapterTraits): GpuPlan {
  const groups = groupCount(spec.view);
  const rescueTiny = (spec.mode === 'batch' || spec.mode === 'rms') && spec.eps < TINY_EPS;
  const fused = planFused(spec, a);
  if (fused) return { fused, reduce: null, finalize: null, apply: null, elementwise: null, rescueTiny };
  const count = elementCount(spec.view);
  const width = spec.rows.width;
  const half = halfIo(spec);
  const pairs = spec.outputDtype === 'float16';
  // Channels-last vec4 rows put samples on grid y, within the per-dimension limit.
  const vec4 = !half && width % 4 === 0 && (spec.rows.kind !== 'pixels' || spec.rows.groupMod <= a.maxWorkgroupsPerDim);
  // Invocations along a row: the power of two that covers most of its (vec4) columns; then
  // enough rows per invocation for about APPLY_PER_INVOCATION accesses each.
  const columns = vec4 ? width / 4 : width;
  const tw = Math.min(APPLY_WG, 2 ** Math.max(0, Math.round(Math.log2(columns))));
  const softwareShaped = a.prefer === 'serial' || (a.prefer === 'auto' && a.software);
  // main_vec4_pixels loads five plane vec4s per column before its rows: software adapters,
  // where each is a gather, amortize them over more rows.
  const perInvocation = softwareShaped && vec4 && spec.rows.kind === 'pixels' ? APPLY_PIXEL_ROWS : APPLY_PER_INVOCATION;
  const rowsPerGroup = (APPLY_WG / tw) * Math.max(1, Math.round(perInvocation / ceilDiv(columns, tw)));
  // Software adapters: channels-first planes in runs of up to APPLY_RUN vec4s, split evenly.
  const runs = vec4 && spec.rows.kind === 'planes' && softwareShaped ? ceilDiv(columns, APPLY_RUN) : 0;
  const run = runs ? ceilDiv(columns, runs) : 0;
  const rows = count / width;
  return {
    fused: null,
    reduce: spec.mode === 'running' ? null : chooseReduce(spec.view, a, spec.dtype === 'float32'),
    finalize: { workgroups: linearGrid(groups, SERIAL_WG, a.maxWorkgroupsPerDim) },
    apply: spec.mode === 'moments' ? null : {
      vec4, pairs, tw, run,
      // Channels-last vec4 rows are dispatched per sample (grid y): see main_vec4_pixels.
      workgroups: pairs ? linearGrid(ceilDiv(count, 2), APPLY_WG, a.maxWorkgroupsPerDim)
        : run ? linearGrid(rows * runs, APPLY_WG, a.maxWorkgroupsPerDim)
        : vec4 && spec.rows.kind === 'pixels'
          ? [Math.min(ceilDiv(rows / spec.rows.groupMod, rowsPerGroup), a.maxWorkgroupsPerDim), spec.rows.groupMod, 1]
          : [Math.min(ceilDiv(rows, rowsPerGroup), a.maxWorkgroupsPerDim), 1, 1],
    },
    elementwise: spec.residual ? { workgroups: linearGrid(spec.dtype === 'float16' ? ceilDiv(count, 2) : count, APPLY_WG, a.maxWorkgroupsPerDim) }
      : spec.mode === 'moments' && spec.outputDtype === 'float16'
        ? { workgroups: linearGrid(ceilDiv(groups, 2), APPLY_WG, a.maxWorkgroupsPerDim) } : null,
    rescueTiny,
  };
}
