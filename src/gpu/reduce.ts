/**
 * Records stage 1 of the statistics, the reduce_stats* kernel a ReducePlan names: shared by
 * the normalization path and column statistics, which differ only in overrides.
 */
import { type ReducePlan } from '../plan/gpu-plan';
import { kernels } from './kernels';
import type { Recorder } from './recorder';

/**
 * Dispatch the stage-1 variant of `r` over `x`, writing its partials and, for the serial and
 * columns variants, their ranges (bound even where RANGES is off: the binding is declared).
 * `overrides` are welford.wgsl's (SQUARE, RESCUE_TINY, SKIP_NAN, RANGES).
 */
export function recordReduce(
  rec: Recorder, r: ReducePlan, subgroups: boolean, overrides: Record<string, boolean>,
  x: GPUBuffer, partials: GPUBuffer, ranges: GPUBuffer,
): void {
  const view = [r.view.o, r.view.p, r.view.q, r.view.s];
  if (r.variant === 'serial') {
    rec.dispatch(kernels.reduceStatsSerial(r.entry), { WG: r.wg, ...overrides },
      [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), x, partials, ranges], r.workgroups);
  } else if (r.variant === 'columns') {
    rec.dispatch(kernels.reduceStatsColumns, { WG: r.wg, ...overrides },
      [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks, r.tx]), x, partials, ranges], r.workgroups);
  } else {
    rec.dispatch(kernels.reduceStats(subgroups), { WG: r.wg, ...overrides },
      [rec.uniform('reduce-params', [...view, r.chunkLen, r.chunks]), x, partials], r.workgroups);
  }
}
