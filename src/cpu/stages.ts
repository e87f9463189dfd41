/**
 * CPU twins of the WGSL stages, in float64: the reference every GPU kernel is tested against
 * and the fallback where WebGPU is missing. Same names, same [O, P, Q, S] view, but exact
 * two-pass statistics instead of shifted float32 Welford.
 */
import { roundHalf, type DType } from '../half';
import type { Activation } from '../plan/options';
import type { NormSpec } from '../plan/spec';
import { groupCount, groupSize, type GroupView } from '../plan/view';

/** A float64 result stored as `dtype` stores it (float32 arrays round on assignment). */
const storeAs = (dtype: DType): ((v: number) => number) => (dtype === 'float16' ? roundHalf : (v) => v);

/**
 * Twin of add_residual.wgsl and of the sums the fused stages write: x + residual rounded as a
 * float32 add, then to the input dtype (as PyTorch's half add, computed in float32).
 */
export function addResidual(x: Float32Array, residual: Float32Array, dtype: DType): Float32Array {
  const round = storeAs(dtype);
  const sum = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) sum[i] = round(Math.fround(x[i] + residual[i]));
  return sum;
}

/** erf(x), |x| < 1.5: 2/sqrt(pi) exp(-x²) sum 2^n x^(2n+1) / (1·3···(2n+1)), a series of same-signed terms. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 400 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * erfc(x) in float64 (JS has no erf): 1 - the series below 1.5 (erfc >= 0.03 there, so the
 * subtraction loses nothing), Laplace's continued fraction above (converged by 120 terms).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 1.5) return 1 - erfSeries(x);
  if (x === Infinity) return 0;
  // erfc(x) = exp(-x²) / sqrt(pi) / (x + (1/2) / (x + (2/2) / (x + (3/2) / ...))), evaluated backwards.
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** Twin of epilogue.wgsl's `activate`, in float64, as PyTorch defines each function. */
export function activate(v: number, activation: Activation | 'none'): number {
  switch (activation) {
    case 'relu': return v < 0 ? 0 : v;
    case 'silu': return v / (1 + Math.exp(-v));
    case 'gelu': return 0.5 * v * erfc(-v / Math.SQRT2);
    // 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)), without tanh's cancellation for negative v.
    case 'gelu_tanh': return v / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    default: return v;
  }
}

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
  const round = storeAs(spec.outputDtype);
  return {
    mean: Float32Array.from(reduced.mean, round),
    variance: Float32Array.from(reduced.m2, (m2) => round(dof > 0 ? m2 / dof : NaN)),
  };
}

/**
 * Twin of apply_norm.wgsl: y = activation((x - mean) * rstd * weight + bias), row by row,
 * rounded once to the output dtype.
 */
export function applyNorm(
  spec: NormSpec, x: Float32Array, affine: GroupAffine, weight?: Float32Array, bias?: Float32Array,
): Float32Array {
  const l = spec.rows;
  const y = new Float32Array(x.length);
  const rms = spec.mode === 'rms';
  const round = storeAs(spec.outputDtype);
  const act = spec.activation;
  for (let r = 0, i = 0; i < x.length; r++) {
    const rowGroup = (Math.floor(r / l.groupDiv) % l.groupMod) * l.groupMul;
    const rowParam = Math.floor(r / l.paramDiv) % l.paramMod;
    for (let w = 0; w < l.width; w++, i++) {
      const g = rowGroup + (l.columnGroups === 0 ? 0 : l.columnGroups === 1 ? w : Math.floor(w / l.columnGroupDiv));
      const k = l.kind === 'planes' ? rowParam : w;
      const w1 = weight ? weight[k] : 1;
      // PyTorch's order for RMSNorm (x * rstd) keeps 0 * inf = NaN exactly where it does.
      const v = rms ? x[i] * affine.rstd[g] * w1 : (x[i] - affine.mean[g]) * affine.rstd[g] * w1 + (bias ? bias[k] : 0);
      y[i] = round(activate(v, act));
    }
  }
  return y;
}
