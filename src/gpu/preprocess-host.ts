/**
 * `resizeMode: 'fast'` on a software adapter, when every image of a batch was shrunk to the
 * output size on the host: the rest of preprocess_image.wgsl (flip, channel mix, scale, mean,
 * std, layout) runs there too and only the tensor is uploaded. A dispatch costs more there
 * than this loop: the shader runs on the CPU all the same, and its completion is seen late
 * (SwiftShader in Chromium: about 2 ms, the GPU process's polling period, for any kernel).
 */
import type { ImagePixels } from '../image-input';
import type { PreprocessSpec } from '../plan/preprocess';

const f32 = Math.fround;

/**
 * preprocess_image.wgsl's output for one image, `spec.outW` x `spec.outH` read as is, into
 * `out` (its `channels * outW * outH` floats, in `spec.layout`): the kernel's float32
 * arithmetic step by step (its uniforms rounded to float32, the mean as its float pair, `dot`
 * summed x, y, z), so the values are the kernel's own (bit for bit on SwiftShader).
 */
export function normalizeOnHost(spec: PreprocessSpec, { data, channels: ch }: ImagePixels, out: Float32Array): void {
  const { outW, outH, channels: C, flip } = spec;
  const pixels = outW * outH;
  const scale = f32(spec.scale);
  for (let c = 0; c < C; c++) {
    const m = spec.mix[c].map(f32);
    const meanHi = f32(spec.mean[c]);
    const meanLo = f32(spec.mean[c] - meanHi);
    const std = f32(spec.std[c]);
    // The kernel's store() of a mixed value v.
    const finish = (v: number) => f32(f32(f32(f32(v * scale) - meanHi) - meanLo) / std);
    // Output element of pixel p: base + p * step (channels-first planes, or channels interleaved).
    const [base, step] = spec.layout === 'channels-first' ? [c * pixels, 1] : [c, C];
    // The source channel this output channel copies (a 1-channel source passes through unmixed), or -1.
    const k = ch === 1 ? 0 : m.filter((w) => w !== 0).length === 1 ? m.indexOf(1) : -1;
    const di = flip ? -ch : ch;
    // Output row y's first source byte: the row read forwards, or backwards with a flip.
    const rowStart = (y: number) => (y * outW + (flip ? outW - 1 : 0)) * ch;
    if (k >= 0) {
      // Every v is a byte: each byte's output is computed once.
      const table = Float32Array.from({ length: 256 }, (_, v) => finish(v));
      for (let y = 0, o = base; y < outH; y++) {
        for (let x = 0, i = rowStart(y) + k; x < outW; x++, i += di, o += step) out[o] = table[data[i]];
      }
    } else {
      for (let y = 0, o = base; y < outH; y++) {
        for (let x = 0, i = rowStart(y); x < outW; x++, i += di, o += step) {
          out[o] = finish(f32(f32(f32(m[0] * data[i]) + f32(m[1] * data[i + 1])) + f32(m[2] * data[i + 2])));
        }
      }
    }
  }
}
