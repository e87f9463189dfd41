/**
 * CPU twin of preprocess_image.wgsl, in float64: the same sampling taps (exact integer
 * coordinates), blend order, channel mix and normalization, rounded once to float32.
 */
import type { ImagePixels } from '../image-input';
import { axisTaps, type PreprocessSpec } from '../plan/preprocess';

/** Twin of preprocess_image.wgsl: the same output from the bytes of every source. */
export function preprocessImage(spec: PreprocessSpec, sources: readonly ImagePixels[]): Float32Array {
  const { outW, outH, channels } = spec;
  const pixels = outW * outH;
  const y = new Float32Array(sources.length * channels * pixels);
  const rgb = [0, 0, 0];
  sources.forEach((src, n) => {
    const g = spec.images[n];
    const { data } = src;
    const ch = src.channels;
    // Channel k of source pixel (x, yy); a 1-channel source gives R = G = B.
    const at = (x: number, yy: number, k: number) => data[(yy * g.srcW + x) * ch + (ch === 1 ? 0 : k)];
    for (let p = 0; p < pixels; p++) {
      const ox = p % outW;
      const cx = spec.flip ? outW - 1 - ox : ox;
      const tx = axisTaps(cx + g.cropLeft, g.srcW, g.resizedW, spec.nearest);
      const ty = axisTaps(Math.floor(p / outW) + g.cropTop, g.srcH, g.resizedH, spec.nearest);
      for (let k = 0; k < 3; k++) {
        if (tx.f === 0 && ty.f === 0) {
          rgb[k] = at(tx.i0, ty.i0, k);
        } else {
          // PyTorch's separable blend: rows first, then the two rows.
          const w0 = 1 - tx.f;
          const top = w0 * at(tx.i0, ty.i0, k) + tx.f * at(tx.i1, ty.i0, k);
          const bottom = w0 * at(tx.i0, ty.i1, k) + tx.f * at(tx.i1, ty.i1, k);
          rgb[k] = (1 - ty.f) * top + ty.f * bottom;
        }
      }
      for (let c = 0; c < channels; c++) {
        const m = spec.mix[c];
        const v = ch === 1 ? rgb[0] : m[0] * rgb[0] + m[1] * rgb[1] + m[2] * rgb[2];
        const out = (v * spec.scale - spec.mean[c]) / spec.std[c];
        y[spec.layout === 'channels-last' ? (n * pixels + p) * channels + c : (n * channels + c) * pixels + p] = out;
      }
    }
  });
  return y;
}
