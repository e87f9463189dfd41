/**
 * Float64 moments on the host: the running aggregates of dataset statistics and the scalers.
 * Each entry (a column, a pixel, a channel) is (n, mean, M2, min, max); two aggregates merge
 * with Chan's update in float64, and GPU partials enter as shift + mean, which is exact in
 * float64, so the host adds no rounding worth naming to what the GPU measured.
 */

/** Per-entry count, mean, sum of squared deviations, min and max. */
export interface Moments64 {
  n: Float64Array;
  mean: Float64Array;
  m2: Float64Array;
  min: Float64Array;
  max: Float64Array;
}

export function emptyMoments64(length: number): Moments64 {
  return {
    n: new Float64Array(length),
    mean: new Float64Array(length),
    m2: new Float64Array(length),
    min: new Float64Array(length).fill(Infinity),
    max: new Float64Array(length).fill(-Infinity),
  };
}

/** Chan-merge entry j of `b` into entry i of `into`. */
export function mergeEntry(into: Moments64, i: number, nb: number, meanB: number, m2B: number, minB: number, maxB: number): void {
  if (nb === 0) return;
  const na = into.n[i];
  if (minB < into.min[i]) into.min[i] = minB;
  if (maxB > into.max[i]) into.max[i] = maxB;
  if (na === 0) {
    into.n[i] = nb;
    into.mean[i] = meanB;
    into.m2[i] = m2B;
    return;
  }
  const n = na + nb;
  const delta = meanB - into.mean[i];
  const f = nb / n;
  into.n[i] = n;
  // Convex form, as welford.wgsl's chanMerge: an infinite mean stays infinite (not inf - inf).
  into.mean[i] = into.mean[i] * (1 - f) + meanB * f;
  into.m2[i] += m2B + delta * delta * na * f;
}

/** Merge `b` into `into`, entry by entry (same lengths). */
export function mergeMoments64(into: Moments64, b: Moments64): Moments64 {
  for (let i = 0; i < into.n.length; i++) mergeEntry(into, i, b.n[i], b.mean[i], b.m2[i], b.min[i], b.max[i]);
  return into;
}

/**
 * The unit of a GPU partial from its stored count n * unit (welford.wgsl's `statsOf`): plain
 * (1), a rescue pass's 2^-100, or the tiny rescue's 2^64.
 */
function partialUnit(storedN: number): number {
  if (storedN < 2 ** -60) return 2 ** -100;
  return storedN >= 2 ** 40 ? 2 ** 64 : 1;
}

/**
 * GPU partials laid out [A, S, C] (stats as welford.wgsl's `partialOf` vec4s (n * unit, mean,
 * M2, shift), ranges as (min, max) pairs, min > max for none), merged over S into A*C float64
 * entries, entry a * C + c. Units are undone in float64, where 2^±200 cannot overflow.
 */
export function fromPartials(stats: Float32Array, ranges: Float32Array, a: number, s: number, c: number): Moments64 {
  const out = emptyMoments64(a * c);
  for (let ia = 0; ia < a; ia++) {
    for (let is = 0; is < s; is++) {
      for (let ic = 0; ic < c; ic++) {
        const k = (ia * s + is) * c + ic;
        const unit = partialUnit(stats[4 * k]);
        const [lo, hi] = ranges[2 * k] > ranges[2 * k + 1] ? [Infinity, -Infinity] : [ranges[2 * k], ranges[2 * k + 1]];
        mergeEntry(
          out, ia * c + ic, stats[4 * k] / unit, (stats[4 * k + 3] + stats[4 * k + 1]) / unit, stats[4 * k + 2] / (unit * unit), lo, hi,
        );
      }
    }
  }
  return out;
}

/** Merge entries of `m` viewed as [A, B, C] over B: A*C entries, a * C + c. */
export function groupMoments64(m: Moments64, a: number, b: number, c: number): Moments64 {
  const out = emptyMoments64(a * c);
  for (let ia = 0; ia < a; ia++) {
    for (let ib = 0; ib < b; ib++) {
      for (let ic = 0; ic < c; ic++) {
        const k = (ia * b + ib) * c + ic;
        mergeEntry(out, ia * c + ic, m.n[k], m.mean[k], m.m2[k], m.min[k], m.max[k]);
      }
    }
  }
  return out;
}
