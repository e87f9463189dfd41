/**
 * CPU twins of the WGSL stages, in float64: the reference every GPU kernel is tested against
 * and the fallback where WebGPU is missing. Same names, same [O, P, Q, S] view, but exact
 * two-pass statistics instead of shifted float32 Welford.
 */
import type { NormSpec } from '../plan/spec';
import { groupCount, groupSize, type GroupView } from '../plan/view';

/** Per-group mean and M2 (sum of squared deviations); for `square`, mean of x² and M2 unused. */
export interface GroupMoments {
  mean: Float64Array;
  m2: Float64Array;
}

/** Twin of reduce_stats*.wgsl: exact two-pass statistics of every (o, q) group. */
export function reduceStats(x: Float32Array, v: GroupView, square: boolean): GroupMoments {
  const groups = groupCount(v);
  const sum = new Float64Array(groups);
  const m2 = new Float64Array(groups);
  const visit = (f: (g: number, value: number) => void) => {
    let i = 0;
    for (let o = 0; o < v.o; o++) {
      for (let p = 0; p < v.p; p++) {
        for (let q = 0; q < v.q; q++) {
          const g = o * v.q + q;
          for (let s = 0; s < v.s; s++) f(g, x[i++]);
        }
      }
    }
  };
  visit(square ? (g, value) => { sum[g] += value * value; } : (g, value) => { sum[g] += value; });
  const n = groupSize(v);
  const mean = sum.map((s) => s / n);
  if (!square) visit((g, value) => { const d = value - mean[g]; m2[g] += d * d; });
  return { mean, m2 };
}

/** Per-group affine of the apply stage: y = (x - mean) * rstd (then weight and bias). */
export interface GroupAffine {
  mean: Float64Array;
  rstd: Float64Array;
}

/**
 * Twin of finalize_stats.wgsl for modes batch, running and rms; updates running statistics
 * in place with PyTorch's rule when the spec says so.
 */
export function finalizeStats(
  spec: NormSpec, reduced: GroupMoments | null, runningMean?: Float32Array, runningVar?: Float32Array,
): GroupAffine {
  const groups = groupCount(spec.view);
  const n = groupSize(spec.view);
  const mean = new Float64Array(groups);
  const rstd = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    if (spec.mode === 'running') {
      mean[g] = runningMean![g];
      rstd[g] = 1 / Math.sqrt(runningVar![g] + spec.eps);
    } else if (spec.mode === 'rms') {
      rstd[g] = 1 / Math.sqrt(reduced!.mean[g] + spec.eps);
    } else {
      mean[g] = reduced!.mean[g];
      rstd[g] = 1 / Math.sqrt(reduced!.m2[g] / n + spec.eps);
      if (spec.updateRunning) {
        const m = spec.momentum;
        runningMean![g] = (1 - m) * runningMean![g] + m * reduced!.mean[g];
        runningVar![g] = (1 - m) * runningVar![g] + m * (reduced!.m2[g] / (n - 1));
      }
    }
  }
  return { mean, rstd };
}

/** Twin of finalize_stats.wgsl in mode moments: mean and M2 / (n - correction). */
export function finalizeMoments(spec: NormSpec, reduced: GroupMoments): { mean: Float32Array; variance: Float32Array } {
  const dof = groupSize(spec.view) - spec.correction;
  return {
    mean: Float32Array.from(reduced.mean),
    variance: Float32Array.from(reduced.m2, (m2) => (dof > 0 ? m2 / dof : NaN)),
  };
}

/** Twin of apply_norm.wgsl: y = (x - mean) * rstd * weight + bias, row by row, rounded once to float32. */
export function applyNorm(
  spec: NormSpec, x: Float32Array, affine: GroupAffine, weight?: Float32Array, bias?: Float32Array,
): Float32Array {
  const l = spec.rows;
  const y = new Float32Array(x.length);
  const rms = spec.mode === 'rms';
  for (let r = 0, i = 0; i < x.length; r++) {
    const rowGroup = (Math.floor(r / l.groupDiv) % l.groupMod) * l.groupMul;
    const rowParam = Math.floor(r / l.paramDiv) % l.paramMod;
    for (let w = 0; w < l.width; w++, i++) {
      const g = rowGroup + (l.columnGroups === 0 ? 0 : l.columnGroups === 1 ? w : Math.floor(w / l.columnGroupDiv));
      const k = l.kind === 'planes' ? rowParam : w;
      const w1 = weight ? weight[k] : 1;
      // PyTorch's order for RMSNorm (x * rstd) keeps 0 * inf = NaN exactly where it does.
      y[i] = rms ? x[i] * affine.rstd[g] * w1 : (x[i] - affine.mean[g]) * affine.rstd[g] * w1 + (bias ? bias[k] : 0);
    }
  }
  return y;
}
