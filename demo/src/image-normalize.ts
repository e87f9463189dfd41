/**
 * The playground's image normalization, all on the engine: `preprocess` (image bytes to a
 * normalized [1, 3, H, W] tensor in one fused dispatch, issue 3) for the fixed presets, and
 * preprocess + `moments` + `batchNorm` / `instanceNorm` for the per-image ones. The same code
 * runs on the GPU engine and on the CPU reference engine.
 */
import { preprocess, type Engine, type Tensor } from '../../src/index';

export type PresetId = 'imagenet' | 'caffe' | 'minus1to1' | 'zero-center' | 'standardize' | 'custom';

export interface PresetInfo {
  id: PresetId;
  label: string;
  formula: string;
}

export const PRESETS: readonly PresetInfo[] = [
  { id: 'imagenet', label: 'ImageNet mean/std', formula: '(x/255 − [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], RGB' },
  { id: 'caffe', label: 'Caffe (BGR, mean subtraction)', formula: 'x − [103.939, 116.779, 123.68], channels reordered to BGR, no scaling' },
  { id: 'minus1to1', label: '[−1, 1]', formula: 'x/127.5 − 1 (Inception / Keras "tf" mode)' },
  { id: 'zero-center', label: 'Zero-centering (per image)', formula: 'x/255 − mean of this image\'s channel (moments + BatchNorm with those statistics)' },
  { id: 'standardize', label: 'Standardization (per image)', formula: '(x/255 − mean) / std of this image\'s channel (InstanceNorm)' },
  { id: 'custom', label: 'Custom', formula: '(x · scale − mean) / std, your values' },
];

export interface CustomParams {
  /** Multiplies the 0..255 bytes first. */
  scale: number;
  /** Per channel in R, G, B order, on the scaled range. */
  mean: [number, number, number];
  std: [number, number, number];
  order: 'rgb' | 'bgr';
}

export const DEFAULT_CUSTOM: CustomParams = { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], order: 'rgb' };

export interface NormalizedImage {
  /** [1, 3, H, W], channels-first. */
  y: Tensor;
  /** Output channel names in output order. */
  channels: string[];
  /** Mean and std the normalization used, per output channel (per-image presets: computed on the engine). */
  mean: Tensor | readonly number[];
  std: Tensor | readonly number[];
  /** The engine calls, for the page to show. */
  calls: string;
  dispose(): void;
}

const EPS = 1e-5;

/** Normalize `image` on `engine` with `preset`. Everything stays on the engine's device. */
export function normalizeImage(engine: Engine, image: ImageData, preset: PresetId, custom: CustomParams = DEFAULT_CUSTOM): NormalizedImage {
  const temps: Tensor[] = [];
  const layout = { layout: 'channels-first' as const };
  const done = (y: Tensor, channels: string[], mean: Tensor | readonly number[], std: Tensor | readonly number[], calls: string): NormalizedImage => ({
    y, channels, mean, std, calls,
    dispose() {
      y.dispose();
      for (const t of temps) t.dispose();
    },
  });
  switch (preset) {
    case 'imagenet':
      return done(preprocess(engine, image, { preset: 'imagenet', ...layout }), ['R', 'G', 'B'],
        [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], "preprocess(engine, image, { preset: 'imagenet' })");
    case 'caffe':
      return done(preprocess(engine, image, { preset: 'caffe', ...layout }), ['B', 'G', 'R'],
        [103.939, 116.779, 123.68], [1, 1, 1], "preprocess(engine, image, { preset: 'caffe' })");
    case 'minus1to1':
      return done(preprocess(engine, image, { preset: 'inception', ...layout }), ['R', 'G', 'B'],
        [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], "preprocess(engine, image, { preset: 'inception' })");
    case 'custom': {
      const order = custom.order;
      const bgr = <T>(v: readonly T[]) => (order === 'bgr' ? [...v].reverse() : [...v]);
      return done(
        preprocess(engine, image, { scale: custom.scale, mean: custom.mean, std: custom.std, channelOrder: order, ...layout }),
        bgr(['R', 'G', 'B']), bgr(custom.mean), bgr(custom.std),
        `preprocess(engine, image, { scale: ${+custom.scale.toPrecision(6)}, mean: [${custom.mean}], std: [${custom.std}], channelOrder: '${order}' })`,
      );
    }
    case 'zero-center': {
      const x = preprocess(engine, image, { preset: 'none', ...layout });
      const m = engine.moments(x, { axes: [0, 2, 3], correction: 0 });
      temps.push(x, m.mean, m.variance);
      const y = engine.batchNorm(x, { runningMean: m.mean, runningVar: [1, 1, 1], eps: 0 });
      return done(y, ['R', 'G', 'B'], m.mean, [1, 1, 1],
        "x = preprocess(engine, image, { preset: 'none' }); m = engine.moments(x, { axes: [0, 2, 3], correction: 0 }); engine.batchNorm(x, { runningMean: m.mean, runningVar: [1, 1, 1], eps: 0 })");
    }
    case 'standardize': {
      const x = preprocess(engine, image, { preset: 'none', ...layout });
      const m = engine.moments(x, { axes: [0, 2, 3], correction: 0 });
      temps.push(x, m.mean, m.variance);
      const y = engine.instanceNorm(x, { eps: EPS });
      return done(y, ['R', 'G', 'B'], m.mean, m.variance,
        "x = preprocess(engine, image, { preset: 'none' }); engine.instanceNorm(x, { eps: 1e-5 })");
    }
  }
}

/** Host copies of a normalization's mean and std (std from a variance tensor for 'standardize'). */
export async function usedStatistics(n: NormalizedImage, preset: PresetId): Promise<{ mean: number[]; std: number[] }> {
  const host = async (v: Tensor | readonly number[]) => (Array.isArray(v) ? [...(v as number[])] : [...(await (v as Tensor).read())]);
  const mean = await host(n.mean);
  let std = await host(n.std);
  if (preset === 'standardize') std = std.map((v) => Math.sqrt(v + EPS));
  return { mean, std };
}
