/**
 * Memory traffic and dispatch count of an execution plan, for `engine.explain`: a reader sees
 * why a variant sits at (or above) the copy ceiling without running it.
 *
 * Counting rules, shared by both backends so their figures compare:
 * - the input x counts once per pass a stage makes over it (`inputPasses`), the output once;
 * - every other buffer a stage binds (weight, bias, running statistics, partials, per-group
 *   statistics, folded affine planes) counts once at its size: such buffers are small next to
 *   x and re-reads of them hit the cache;
 * - uniforms, and the extra pass a group takes only when its float32 statistics must be
 *   rescued (overflow, underflow: welford.wgsl), are left out: the first is tiny, the second
 *   depends on the data;
 * - the ideal is one read of x and one write of the result (y, or the moments' two statistics).
 */
import type { GpuPlan } from './gpu-plan';
import type { NormSpec } from './spec';
import { elementCount, groupCount } from './view';

/** Bytes of one float32 element. */
const F32 = 4;
/** One float32 partial or statistics entry: four floats (welford.wgsl, finalize_stats.wgsl). */
const ENTRY = 16;
/** One group's float64 pair (mean and M2, or mean and rstd) on the CPU backend. */
const F64_PAIR = 16;

/** What one stage of a plan moves and launches. */
export interface StageTraffic {
  readBytes: number;
  writeBytes: number;
  /** GPU dispatches (0 for host stages). */
  dispatches: number;
  /** Passes over the input x included in `readBytes`. */
  inputPasses: number;
}

/** A whole plan's traffic against the ideal of one copy. */
export interface Traffic extends StageTraffic {
  /** One read of x. */
  idealReadBytes: number;
  /** One write of the result. */
  idealWriteBytes: number;
  /** (readBytes + writeBytes) / (idealReadBytes + idealWriteBytes): 1 is the traffic of a copy. */
  ratio: number;
}

/** Which affine operands a call passes. */
export interface AffineOperands {
  weight: boolean;
  bias: boolean;
}

/** Length of the weight / bias of `spec`: one past the largest affine index q * paramQ + s / paramS. */
export function paramCount(spec: NormSpec): number {
  const v = spec.view;
  return (v.q - 1) * spec.paramQ + Math.ceil(v.s / spec.paramS);
}

function parts(spec: NormSpec, affine: AffineOperands) {
  const n = elementCount(spec.view);
  const groups = groupCount(spec.view);
  const params = ((affine.weight ? 1 : 0) + (affine.bias ? 1 : 0)) * paramCount(spec) * F32;
  // Running statistics: read in inference, read and written by a training update (one per group).
  const running = spec.mode === 'running' || spec.updateRunning ? 2 * groups * F32 : 0;
  const result = spec.mode === 'moments' ? 2 * groups * F32 : n * F32;
  return { x: n * F32, groups, params, running, runningWrite: spec.updateRunning ? running : 0, result };
}

const stage = (readBytes: number, writeBytes: number, dispatches: number, inputPasses: number): StageTraffic => (
  { readBytes, writeBytes, dispatches, inputPasses }
);

/** Per-stage traffic of a GPU plan, keyed by the stage names `describe` reports. */
export function gpuTraffic(spec: NormSpec, plan: GpuPlan, affine: AffineOperands): Record<string, StageTraffic> {
  const p = parts(spec, affine);
  const out: Record<string, StageTraffic> = {};
  if (plan.fused?.kernel === 'rows') {
    out.normalizeRows = stage(p.x + p.params, p.result, 1, 1);
    return out;
  }
  if (plan.fused) {
    // Statistics pass, then the affine pass (normalize_serial.wgsl).
    out.normalizeSerial = stage(2 * p.x + p.params + p.running, p.result + p.runningWrite, 1, 2);
    return out;
  }
  const partials = plan.reduce ? plan.reduce.partials * ENTRY : 0;
  if (plan.reduce) out.reduceStats = stage(p.x, partials, 1, 1);
  const stats = p.groups * ENTRY;
  out.finalizeStats = stage(partials + p.running, (spec.mode === 'moments' ? p.result : stats) + p.runningWrite, 1, 0);
  if (plan.apply) {
    let table = stats + p.params;
    if (plan.apply.vec4 && spec.rows.kind === 'pixels') {
      // Five planes of the folded affine per (sample-group, column) entry (fold_affine.wgsl).
      const planes = spec.rows.groupMod * spec.rows.width * 20;
      out.foldAffine = stage(stats + p.params, planes, 1, 0);
      table = planes;
    }
    out.applyNorm = stage(p.x + table, p.result, 1, 1);
  }
  return out;
}

/** Per-stage traffic of the CPU backend's float64 twins (two-pass statistics, no dispatches). */
export function cpuTraffic(spec: NormSpec, affine: AffineOperands): Record<string, StageTraffic> {
  const p = parts(spec, affine);
  const stats = p.groups * F64_PAIR;
  const out: Record<string, StageTraffic> = {};
  if (spec.mode !== 'running') {
    // Sums, then squared deviations from the mean (a mean of squares needs only the first).
    const passes = spec.mode === 'rms' ? 1 : 2;
    out.reduceStats = stage(passes * p.x, stats, 0, passes);
  }
  if (spec.mode === 'moments') {
    out.finalizeMoments = stage(stats, p.result, 0, 0);
    return out;
  }
  out.finalizeStats = stage((spec.mode === 'running' ? 0 : stats) + p.running, stats + p.runningWrite, 0, 0);
  out.applyNorm = stage(p.x + stats + p.params, p.result, 0, 1);
  return out;
}

/** Totals of a plan's stages against the ideal of one read of x and one write of the result. */
export function totalTraffic(spec: NormSpec, stages: readonly StageTraffic[]): Traffic {
  const sum = (k: keyof StageTraffic) => stages.reduce((s, t) => s + t[k], 0);
  const p = parts(spec, { weight: false, bias: false });
  const readBytes = sum('readBytes');
  const writeBytes = sum('writeBytes');
  return {
    readBytes, writeBytes, dispatches: sum('dispatches'), inputPasses: sum('inputPasses'),
    idealReadBytes: p.x, idealWriteBytes: p.result, ratio: (readBytes + writeBytes) / (p.x + p.result),
  };
}
