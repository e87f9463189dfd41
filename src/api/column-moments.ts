/**
 * Internal: float64 column statistics of a tensor viewed as [rows, width] on either backend,
 * shared by dataset statistics and the feature scalers. WebGPU runs column_stats /
 * merge_stats and merges the partials read back in float64; the CPU backend runs their
 * float64 twins.
 */
import type { Backend } from '../backend';
import { columnStats, mergeStats } from '../cpu/column-stats';
import { WebGpuBackend } from '../gpu/backend';
import { columnStatsGpu } from '../gpu/column-stats';
import { planColumnStats } from '../plan/column-stats';
import type { Moments64 } from '../plan/moments64';
import type { Tensor } from './tensor';

/** Per column (when `wantColumns`) and per group of `groups` = [A, B, C] (merged over B). */
export async function columnMoments(
  backend: Backend, x: Tensor, rows: number, width: number, wantColumns: boolean, groups?: readonly [number, number, number],
): Promise<{ columns: Moments64 | null; groups: Moments64 | null }> {
  const storage = x.storage;
  if (backend instanceof WebGpuBackend) {
    if (storage.kind !== 'gpu') throw new Error('internal: CPU storage given to the WebGPU backend');
    return columnStatsGpu(backend, storage.buffer, planColumnStats(rows, width, backend.traits, groups), wantColumns);
  }
  if (storage.kind !== 'cpu') throw new Error('internal: GPU storage given to the CPU backend');
  const columns = columnStats(storage.data, rows, width);
  return { columns: wantColumns ? columns : null, groups: groups ? mergeStats(columns, ...groups) : null };
}
