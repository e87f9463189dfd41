/**
 * IEEE binary16 (half) conversions on the host: the CPU backend's rounding of float16 results,
 * uploads of float16 tensors and reads of their bits. Rounding is to nearest, ties to even,
 * from a float64 value (one rounding, not float64 -> float32 -> half); overflow gives ±Inf,
 * results below 2^-24 / 2 give ±0, NaN gives the quiet NaN 0x7e00.
 */

/** The element types of a tensor. */
export type DType = 'float32' | 'float16';

/** Largest finite half (65504) plus half an ulp: from here on a value rounds to infinity. */
const HALF_OVERFLOW = 65520;

/** Round to nearest integer, ties to even (`q` >= 0). */
function roundEven(q: number): number {
  const f = Math.floor(q);
  const r = q - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** The half bits nearest to `v` (ties to even). */
export function halfBits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= HALF_OVERFLOW) return sign | 0x7c00;
  // Subnormals (and the rounding up into the smallest normal, 0x0400): units of 2^-24, exact.
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e) * 1024);
  if (m === 2048) {
    m = 1024;
    e++;
  }
  return sign | ((e + 15) << 10) | (m - 1024);
}

/** The value of half bits `h`. */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** `v` rounded to the nearest half (as a float64 number). */
export function roundHalf(v: number): number {
  return halfValue(halfBits(v));
}

/** Half bits of every value. */
export function toHalfBits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfBits(values[i]);
  return out;
}

/** The values of half bits, as float32 (exact: every half is a float32). */
export function fromHalfBits(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfValue(bits[i]);
  return out;
}

/** Bytes of `count` elements of `dtype` as stored in a GPU buffer (halves padded to 4 bytes). */
export function storageBytes(count: number, dtype: DType): number {
  return dtype === 'float16' ? Math.ceil(count / 2) * 4 : count * 4;
}
