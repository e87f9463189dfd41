/**
 * CPU twins of the column-statistics and feature-scaling stages, in float64: exact two-pass
 * statistics instead of shifted float32 Welford, the same [A, B, C] merge, the same affine.
 */
import { emptyMoments64, groupMoments64, type Moments64 } from '../plan/moments64';

/** Twin of column_stats.wgsl (all rows as one chunk): exact statistics of each column of [rows, width]. */
export function columnStats(x: Float32Array, rows: number, width: number): Moments64 {
  const m = emptyMoments64(width);
  const { mean, m2, min, max } = m;
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    for (let w = 0; w < width; w++) {
      const v = x[row + w];
      mean[w] += v;
      if (v < min[w]) min[w] = v;
      if (v > max[w]) max[w] = v;
    }
  }
  for (let w = 0; w < width; w++) mean[w] /= rows;
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    for (let w = 0; w < width; w++) {
      const d = x[row + w] - mean[w];
      m2[w] += d * d;
    }
  }
  m.n.fill(rows);
  return m;
}

/** Twin of merge_stats.wgsl (one slice): entries viewed as [A, B, C] Chan-merged over B. */
export function mergeStats(m: Moments64, a: number, b: number, c: number): Moments64 {
  return groupMoments64(m, a, b, c);
}

/**
 * Twin of scale_features.wgsl: y = ((x - a) - b) * m + c per feature, from `coeffs` (four per
 * feature, float64), clamped to `clip` when given.
 */
export function scaleFeatures(x: Float32Array, width: number, coeffs: Float64Array, clip?: readonly [number, number]): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const f = (i % width) * 4;
    let v = ((x[i] - coeffs[f]) - coeffs[f + 1]) * coeffs[f + 2] + coeffs[f + 3];
    if (clip) v = Math.min(Math.max(v, clip[0]), clip[1]);
    y[i] = v;
  }
  return y;
}
