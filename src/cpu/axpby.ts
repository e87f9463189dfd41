/**
 * Twin of axpby.wgsl: out[i] = alpha·a[i] + beta·b[i] in float64, stored as float32 (one
 * rounding, where the GPU rounds each product and the sum). Without b, alpha·a; `out` may be b
 * itself (the in-place form) and is a new array when omitted.
 */
export function axpby(
  a: Float32Array, alpha: number, b: Float32Array | null, beta: number, out: Float32Array = new Float32Array(a.length),
): Float32Array {
  for (let i = 0; i < a.length; i++) out[i] = b ? alpha * a[i] + beta * b[i] : alpha * a[i];
  return out;
}
