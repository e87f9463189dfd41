/**
 * The GPU side of dataset statistics and the feature scalers: stage 1 of the normalization
 * path (reduce_stats_*.wgsl with RANGES and SKIP_NAN) over the columns, merge_stats.wgsl, and
 * scale_features.wgsl. Statistics are recorded in one pass and one submit, and the few
 * partials left are read back in one copy and merged in float64 on the host.
 */
import type { ColumnMoments, ColumnRequest, ScaleRequest, Storage } from '../backend';
import { MERGE_WG, planColumnStats, type ColumnKernels, type ColumnStatsPlan, type MergePlan } from '../plan/column-stats';
import { linearGrid } from '../plan/gpu-plan';
import { fromPartials } from '../plan/moments64';
import type { WebGpuBackend } from './backend';
import { STORAGE_USAGE } from '../webgpu-flags';
import { recordReduce } from './reduce';
import type { Recorder } from './recorder';
import type { KernelDef } from '../stage-def';

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

function recordMerge(backend: WebGpuBackend, rec: Recorder, kernels: ColumnKernels, plan: MergePlan, input: Partials, label: string): Partials {
  const out = acquirePartials(backend, plan.a * plan.slices * plan.c, label);
  rec.dispatch(plan.tree ? kernels.mergeTree : kernels.mergeSerial, { WG: MERGE_WG },
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
  const { value: { owned, columns, groups }, fault } = backend.record('normgpu:column-stats', [x], (rec) => recordColumnStats(backend, rec, x.buffer, plan, r.kernels));
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
  return result;
}

/** Records the column statistics passes; the partials are the caller's to release. */
function recordColumnStats(backend: WebGpuBackend, rec: Recorder, x: GPUBuffer, plan: ColumnStatsPlan, kernels: ColumnKernels) {
  const owned: Partials[] = [];
  const chunks = acquirePartials(backend, plan.reduce.partials, 'column-chunks');
  owned.push(chunks);
  // Column statistics have no eps that could hide tiny variances: RESCUE_TINY stays off, as
  // for moments.
  recordReduce(rec, plan.reduce, backend.traits.subgroups, { SQUARE: false, RESCUE_TINY: false, RANGES: true, SKIP_NAN: plan.skipNaN },
    x, chunks.stats, chunks.ranges);
  let columns = chunks;
  if (plan.columnMerge) {
    columns = recordMerge(backend, rec, kernels, plan.columnMerge, chunks, 'column-merge');
    owned.push(columns);
  }
  let groups: Partials | null = null;
  if (plan.groupMerge) {
    groups = recordMerge(backend, rec, kernels, plan.groupMerge, columns, 'group-merge');
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
  const { value: buffer, fault } = backend.record('normgpu:scale-features', [x], (rec) => recordScaleFeatures(backend, rec, r.kernel, x.buffer, count, f, coeffs, r.clip));
  return { kind: 'gpu', buffer, owned: true, fault };
}

function recordScaleFeatures(
  backend: WebGpuBackend, rec: Recorder, kernel: KernelDef, x: GPUBuffer, count: number, width: number, coeffs: Float32Array<ArrayBuffer>,
  clip?: readonly [number, number],
): GPUBuffer {
  const y = rec.output(count * 4, STORAGE_USAGE, 'normgpu:scale-features:output');
  const table = rec.temp(coeffs.byteLength, STORAGE_USAGE, 'coeffs');
  backend.device.queue.writeBuffer(table, 0, coeffs);
  const [gx] = linearGrid(count, SCALE_WG, backend.traits.maxWorkgroupsPerDim);
  rec.dispatch(kernel, { WG: SCALE_WG, CLIP: !!clip },
    [rec.uniform('scale-params', [count, width], clip ? [clip[0], clip[1]] : [0, 0]), table, x, y],
    [gx, 1, 1]);
  return y;
}
