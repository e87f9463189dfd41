/**
 * CPU twins of the column-statistics and feature-scaling stages, in float64: exact two-pass
 * statistics instead of shifted float32 Welford, the same [A, B, C] merge, the same affine.
 */
import { emptyMoments64, groupMoments64, type Moments64 } from '../plan/moments64';

/**
 * Twin of the stage-1 reduce_stats*.wgsl with RANGES over a [rows, width] view whose groups are
 * the columns (all rows as one chunk): exact statistics and range of each column; `skipNaN`
 * (SKIP_NAN) leaves NaN values out, each column counting its own.
 */
export function reduceStatsRanges(x: Float32Array, rows: number, width: number, skipNaN = false): Moments64 {
  const m = emptyMoments64(width);
  const { n, mean, m2, min, max } = m;
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    for (let w = 0; w < width; w++) {
      const v = x[row + w];
      if (skipNaN && Number.isNaN(v)) continue;
      n[w]++;
      mean[w] += v;
      if (v < min[w]) min[w] = v;
      if (v > max[w]) max[w] = v;
    }
  }
  for (let w = 0; w < width; w++) mean[w] = n[w] > 0 ? mean[w] / n[w] : 0;
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    for (let w = 0; w < width; w++) {
      const v = x[row + w];
      if (skipNaN && Number.isNaN(v)) continue;
      const d = v - mean[w];
      m2[w] += d * d;
    }
  }
  return m;
}

/** Twin of merge_stats.wgsl (one slice): entries viewed as [A, B, C] Chan-merged over B. */
export function mergeStats(m: Moments64, a: number, b: number, c: number): Moments64 {
  return groupMoments64(m, a, b, c);
}

/**
 * Twin of scale_features.wgsl: y = (x - a) * m + c per feature, from `lines` (a, m, c per
 * feature, float64), clamped to `clip` when given (NaN stays NaN).
 */
export function scaleFeatures(x: Float32Array, width: number, lines: Float64Array, clip?: readonly [number, number]): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const f = (i % width) * 3;
    let v = (x[i] - lines[f]) * lines[f + 1] + lines[f + 2];
    if (clip) v = Math.min(Math.max(v, clip[0]), clip[1]);
    y[i] = v;
  }
  return y;
}
