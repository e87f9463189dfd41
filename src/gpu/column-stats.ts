/**
 * Runs column_stats.wgsl, merge_stats.wgsl and scale_features.wgsl: the GPU side of dataset
 * statistics and the feature scalers. Statistics are recorded in one pass and one submit, and
 * the few partials left are read back in one copy and merged in float64 on the host.
 */
import type { ColumnMoments, ColumnRequest, ScaleRequest, Storage } from '../backend';
import { COLUMN_WG, MERGE_WG, planColumnStats, type ColumnStatsPlan, type MergePlan } from '../plan/column-stats';
import { linearGrid } from '../plan/gpu-plan';
import { columnStats, mergeStats } from '../cpu/column-stats';
import { fromPartials, type Moments64 } from '../plan/moments64';
import type { WebGpuBackend } from './backend';
import { STORAGE_USAGE } from './flags';
import { kernels } from './kernels';
import type { Recorder } from './recorder';

export const SCALE_WG = 256;

interface Partials {
  stats: GPUBuffer;
  ranges: GPUBuffer;
  count: number;
}

function acquirePartials(backend: WebGpuBackend, count: number, label: string): Partials {
  return {
    stats: backend.pool.acquire(count * 16, STORAGE_USAGE, `normgpu:${label}:stats`),
    ranges: backend.pool.acquire(count * 8, STORAGE_USAGE, `normgpu:${label}:ranges`),
    count,
  };
}

function recordMerge(backend: WebGpuBackend, rec: Recorder, plan: MergePlan, input: Partials, label: string): Partials {
  const out = acquirePartials(backend, plan.a * plan.slices * plan.c, label);
  rec.dispatch(kernels.mergeStats(plan.tree), { WG: MERGE_WG },
    [rec.uniform(`${label}-params`, [plan.a, plan.b, plan.c, plan.slices, plan.sliceLen]), input.stats, input.ranges, out.stats, out.ranges],
    plan.workgroups);
  return out;
}

/**
 * Statistics of the columns of `x` viewed as [rows, width]: `wantColumns` reads back one
 * float64 entry per column, and `groups` one per group.
 */
export async function columnStatsGpu(backend: WebGpuBackend, x: Storage & { kind: 'gpu' }, r: ColumnRequest): Promise<ColumnMoments> {
  const plan = planColumnStats(r.rows, r.width, backend.traits, r.groups, r.skipNaN);
  const wantColumns = r.wantColumns;
  const { value: { owned, columns, groups }, fault } = backend.record('normgpu:column-stats', [x], (rec) => recordColumnStats(backend, rec, x.buffer, plan));
  const wanted = [...(wantColumns ? [columns] : []), ...(groups ? [groups] : [])];
  const parts = wanted.flatMap((p) => [{ buffer: p.stats, bytes: p.count * 16 }, { buffer: p.ranges, bytes: p.count * 8 }]);
  const read = backend.readBuffers(parts, fault);
  for (const p of owned) {
    backend.release(p.stats);
    backend.release(p.ranges);
  }
  const arrays = await read;
  let k = 0;
  const result: ColumnMoments = { columns: null, groups: null };
  if (wantColumns) {
    result.columns = fromPartials(arrays[k], arrays[k + 1], 1, 1, plan.width);
    k += 2;
  }
  if (plan.groupMerge) {
    const g = plan.groupMerge;
    result.groups = fromPartials(arrays[k], arrays[k + 1], g.a, g.slices, g.c);
  }
  if (!overflowed(result.columns) && !overflowed(result.groups)) return result;
  // Deviations beyond ~1.8e19 overflow the float32 partials: rare enough to take the float64
  // twin over the data read back, so both backends agree rather than the GPU returning inf.
  const [data] = await backend.readBuffers([{ buffer: x.buffer, bytes: r.rows * r.width * 4 }], x.fault);
  const exact = columnStats(data, r.rows, r.width, r.skipNaN);
  return { columns: wantColumns ? exact : null, groups: r.groups ? mergeStats(exact, ...r.groups) : null };
}

/** Entries of finite data (finite min and max) whose mean or M2 is not finite. */
function overflowed(m: Moments64 | null): boolean {
  if (!m) return false;
  for (let i = 0; i < m.n.length; i++) {
    if (m.n[i] > 0 && Number.isFinite(m.min[i]) && Number.isFinite(m.max[i]) && !(Number.isFinite(m.mean[i]) && Number.isFinite(m.m2[i]))) return true;
  }
  return false;
}

/** Records the column statistics passes; the partials are the caller's to release. */
function recordColumnStats(backend: WebGpuBackend, rec: Recorder, x: GPUBuffer, plan: ColumnStatsPlan) {
  const owned: Partials[] = [];
  const chunks = acquirePartials(backend, plan.chunks * plan.width, 'column-chunks');
  owned.push(chunks);
  rec.dispatch(kernels.columnStats, { WG: COLUMN_WG, SKIP_NAN: plan.skipNaN },
    [rec.uniform('column-params', [plan.rows, plan.width, plan.rowsPerChunk, plan.chunks]), x, chunks.stats, chunks.ranges],
    plan.workgroups);
  let columns = chunks;
  if (plan.columnMerge) {
    columns = recordMerge(backend, rec, plan.columnMerge, chunks, 'column-merge');
    owned.push(columns);
  }
  let groups: Partials | null = null;
  if (plan.groupMerge) {
    groups = recordMerge(backend, rec, plan.groupMerge, columns, 'group-merge');
    owned.push(groups);
  }
  return { owned, columns, groups };
}

/**
 * y = (x - a) * m + c per feature of [rows, width] data (see ScaleRequest). Returns the
 * output's storage.
 */
export function scaleFeaturesGpu(backend: WebGpuBackend, x: Storage & { kind: 'gpu' }, count: number, r: ScaleRequest): Storage {
  const f = r.width;
  const coeffs = new Float32Array(f * 4);
  for (let i = 0; i < f; i++) {
    // The offset as a float32 pair: the high part, then the residue it leaves.
    const a = r.lines[i * 3];
    const hi = Math.fround(a);
    coeffs.set([hi, a - hi, r.lines[i * 3 + 1], r.lines[i * 3 + 2]], i * 4);
  }
  const { value: buffer, fault } = backend.record('normgpu:scale-features', [x], (rec) => recordScaleFeatures(backend, rec, x.buffer, count, f, coeffs, r.clip));
  return { kind: 'gpu', buffer, owned: true, fault };
}

function recordScaleFeatures(
  backend: WebGpuBackend, rec: Recorder, x: GPUBuffer, count: number, width: number, coeffs: Float32Array<ArrayBuffer>,
  clip?: readonly [number, number],
): GPUBuffer {
  const y = rec.output(count * 4, STORAGE_USAGE, 'normgpu:scale-features:output');
  const table = rec.temp(coeffs.byteLength, STORAGE_USAGE, 'coeffs');
  backend.device.queue.writeBuffer(table, 0, coeffs);
  const [gx] = linearGrid(count, SCALE_WG, backend.traits.maxWorkgroupsPerDim);
  rec.dispatch(kernels.scaleFeatures, { WG: SCALE_WG, CLIP: !!clip },
    [rec.uniform('scale-params', [count, width], clip ? [clip[0], clip[1]] : [0, 0]), table, x, y],
    [gx, 1, 1]);
  return y;
}
