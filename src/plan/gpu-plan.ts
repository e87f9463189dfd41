/**
 * Kernel choice and dispatch sizes for one call on one adapter. Chooses among the stage-1
 * variants by adapter class and view shape, keeps every dispatch within
 * maxComputeWorkgroupsPerDimension, and never depends on values of the data.
 */
import type { NormSpec } from './spec';
import { elementCount, groupCount, groupSize } from './view';

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
  /** normalize_serial.wgsl: all stages in one dispatch of one invocation per group. */
  fused: { workgroups: [number, number, number]; why: string } | null;
  reduce: ReducePlan | null;
  finalize: { workgroups: [number, number, number] } | null;
  apply: { vec4: boolean; tw: number; workgroups: [number, number, number] } | null;
}

export const REDUCE_WG = 256;
export const SERIAL_WG = 64;
export const APPLY_WG = 256;
/** Enough workgroups in flight to fill any current GPU; more only adds merge work. */
const TARGET_WORKGROUPS = 4096;
/** Minimum elements per invocation before a group is split across more workgroups. */
const MIN_PER_INVOCATION = 8;

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** Workgroups for `n` invocations of `wg` that index as x + y * (nwg.x * wg). */
export function linearGrid(n: number, wg: number, maxDim: number): [number, number, number] {
  const total = Math.max(1, ceilDiv(n, wg));
  const x = Math.min(total, maxDim);
  return [x, ceilDiv(total, x), 1];
}

function chooseReduce(spec: NormSpec, a: AdapterTraits): ReducePlan {
  const v = spec.view;
  const groups = groupCount(v);
  const m = groupSize(v);
  const maxDim = a.maxWorkgroupsPerDim;
  const serial = (why: string): ReducePlan => ({
    variant: 'serial', workgroups: linearGrid(groups, SERIAL_WG, maxDim), tx: 0, ty: 0,
    chunkLen: m, chunks: 1, r1: 1, r2: 1, partials: groups, why,
  });

  if (a.prefer === 'serial') return serial('forced by EngineOptions.kernels');
  if (a.prefer === 'auto' && a.software && groups >= 16) {
    return serial('software adapter: one invocation per group beats cooperating workgroups');
  }
  if (a.prefer === 'auto' && m <= 64) {
    return serial('small groups: packed one per invocation so no workgroup idles');
  }

  if (v.s < 32 && v.o <= maxDim) {
    const width = v.q * v.s;
    const tx = Math.min(64, 2 ** Math.ceil(Math.log2(width)));
    const ty = REDUCE_WG / tx;
    const tiles = ceilDiv(width, tx);
    const wanted = Math.max(1, Math.floor(TARGET_WORKGROUPS / (tiles * v.o)));
    const rowChunks = Math.min(ceilDiv(v.p, ty * MIN_PER_INVOCATION), wanted, maxDim);
    const chunkLen = ceilDiv(v.p, rowChunks);
    const chunks = ceilDiv(v.p, chunkLen);
    return {
      variant: 'columns', workgroups: [tiles, chunks, v.o], tx, ty, chunkLen, chunks,
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
    variant: 'rows', workgroups: [chunks, gy, ceilDiv(groups, gy)], tx: 0, ty: 0, chunkLen, chunks,
    r1: 1, r2: chunks, partials: groups * chunks,
    why: `long runs (S=${v.s}): ${chunks} workgroup(s) per group of ${m}`,
  };
}

/** Software adapters (or `kernels: 'serial'`) run batch/rms normalizations fused, given enough groups. */
function fusedSerial(spec: NormSpec, a: AdapterTraits): boolean {
  if (spec.mode !== 'batch' && spec.mode !== 'rms') return false;
  return a.prefer === 'serial' || (a.prefer === 'auto' && a.software && groupCount(spec.view) >= 16);
}

export function planGpu(spec: NormSpec, a: AdapterTraits): GpuPlan {
  const groups = groupCount(spec.view);
  if (fusedSerial(spec, a)) {
    return {
      fused: { workgroups: linearGrid(groups, SERIAL_WG, a.maxWorkgroupsPerDim), why: 'software adapter: one invocation per group, two passes, no barriers' },
      reduce: null, finalize: null, apply: null,
    };
  }
  const count = elementCount(spec.view);
  const width = spec.rows.width;
  const vec4 = width % 4 === 0;
  // Invocations along a row: the power of two that covers most of its (vec4) columns.
  const columns = vec4 ? width / 4 : width;
  const tw = Math.min(APPLY_WG, 2 ** Math.max(0, Math.round(Math.log2(columns))));
  const rowsPerGroup = APPLY_WG / tw;
  return {
    fused: null,
    reduce: spec.mode === 'running' ? null : chooseReduce(spec, a),
    finalize: { workgroups: linearGrid(groups, SERIAL_WG, a.maxWorkgroupsPerDim) },
    apply: spec.mode === 'moments' ? null : {
      vec4, tw,
      workgroups: [Math.min(ceilDiv(count / width, rowsPerGroup), a.maxWorkgroupsPerDim), 1, 1],
    },
  };
}
