/**
 * A naive float64 oracle written straight from PyTorch's definitions, with none of the
 * engine's machinery (no [O, P, Q, S] view, no row layouts): every element finds its group
 * and its affine index from its multi-index. Property tests check the CPU backend against
 * it, so a planning bug shared by the CPU twin and the GPU kernels cannot hide.
 * Results are rounded once to float32, as the engine's are.
 */
import type { Layout } from '../../src/index';
import { sizeOf } from './gpu';

export interface ChannelGeometry {
  n: number;
  c: number;
  spatial: number;
}

/** N, C and the spatial extent of a [N, C, ...] or [N, ..., C] shape. */
export function channelGeometry(shape: readonly number[], layout: Layout): ChannelGeometry {
  const n = shape[0];
  const c = layout === 'channels-first' ? shape[1] : shape[shape.length - 1];
  return { n, c, spatial: sizeOf(shape) / (n * c) };
}

/** Sample and channel of flat element i. */
export function channelOf(i: number, g: ChannelGeometry, layout: Layout): { sample: number; channel: number } {
  if (layout === 'channels-first') return { sample: Math.floor(i / (g.c * g.spatial)), channel: Math.floor(i / g.spatial) % g.c };
  return { sample: Math.floor(i / (g.spatial * g.c)), channel: i % g.c };
}

/** Two-pass mean and M2 of each group; `groupOf(i)` names element i's group. */
function groupMoments(x: ArrayLike<number>, groups: number, groupOf: (i: number) => number) {
  const count = new Float64Array(groups);
  const sum = new Float64Array(groups);
  for (let i = 0; i < x.length; i++) {
    const g = groupOf(i);
    count[g]++;
    sum[g] += x[i];
  }
  const mean = sum.map((s, g) => s / count[g]);
  const m2 = new Float64Array(groups);
  for (let i = 0; i < x.length; i++) {
    const g = groupOf(i);
    const d = x[i] - mean[g];
    m2[g] += d * d;
  }
  return { count, mean, m2 };
}

/** y = (x - mean) / sqrt(var + eps) * weight + bias with the biased variance of each group. */
function normalizeGroups(
  x: ArrayLike<number>, groups: number, groupOf: (i: number) => number, paramOf: (i: number) => number,
  eps: number, weight?: ArrayLike<number>, bias?: ArrayLike<number>,
): Float32Array {
  const { count, mean, m2 } = groupMoments(x, groups, groupOf);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const g = groupOf(i);
    const k = paramOf(i);
    const rstd = 1 / Math.sqrt(m2[g] / count[g] + eps);
    y[i] = (x[i] - mean[g]) * rstd * (weight ? weight[k] : 1) + (bias ? bias[k] : 0);
  }
  return y;
}

export interface Affine {
  weight?: ArrayLike<number>;
  bias?: ArrayLike<number>;
}

export function refBatchNormTrain(
  x: ArrayLike<number>, shape: readonly number[], layout: Layout, eps: number, p: Affine,
  running?: { mean: Float64Array; var: Float64Array; momentum: number },
): Float32Array {
  const geo = channelGeometry(shape, layout);
  const groupOf = (i: number) => channelOf(i, geo, layout).channel;
  if (running) {
    const { count, mean, m2 } = groupMoments(x, geo.c, groupOf);
    const m = running.momentum;
    for (let c = 0; c < geo.c; c++) {
      running.mean[c] = (1 - m) * running.mean[c] + m * mean[c];
      running.var[c] = (1 - m) * running.var[c] + m * (m2[c] / (count[c] - 1));
    }
  }
  return normalizeGroups(x, geo.c, groupOf, groupOf, eps, p.weight, p.bias);
}

export function refBatchNormEval(
  x: ArrayLike<number>, shape: readonly number[], layout: Layout, eps: number, p: Affine,
  runningMean: ArrayLike<number>, runningVar: ArrayLike<number>,
): Float32Array {
  const geo = channelGeometry(shape, layout);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = channelOf(i, geo, layout).channel;
    y[i] = (x[i] - runningMean[c]) / Math.sqrt(runningVar[c] + eps) * (p.weight ? p.weight[c] : 1) + (p.bias ? p.bias[c] : 0);
  }
  return y;
}

export function refInstanceNorm(x: ArrayLike<number>, shape: readonly number[], layout: Layout, eps: number, p: Affine): Float32Array {
  const geo = channelGeometry(shape, layout);
  const groupOf = (i: number) => {
    const { sample, channel } = channelOf(i, geo, layout);
    return sample * geo.c + channel;
  };
  return normalizeGroups(x, geo.n * geo.c, groupOf, (i) => channelOf(i, geo, layout).channel, eps, p.weight, p.bias);
}

export function refGroupNorm(
  x: ArrayLike<number>, shape: readonly number[], layout: Layout, numGroups: number, eps: number, p: Affine,
): Float32Array {
  const geo = channelGeometry(shape, layout);
  const perGroup = geo.c / numGroups;
  const groupOf = (i: number) => {
    const { sample, channel } = channelOf(i, geo, layout);
    return sample * numGroups + Math.floor(channel / perGroup);
  };
  return normalizeGroups(x, geo.n * numGroups, groupOf, (i) => channelOf(i, geo, layout).channel, eps, p.weight, p.bias);
}

export function refLayerNorm(x: ArrayLike<number>, normalizedSize: number, eps: number, p: Affine): Float32Array {
  const d = normalizedSize;
  return normalizeGroups(x, x.length / d, (i) => Math.floor(i / d), (i) => i % d, eps, p.weight, p.bias);
}

/** PyTorch's rms_norm: x * rsqrt(mean(x²) + eps) * weight. */
export function refRmsNorm(x: ArrayLike<number>, normalizedSize: number, eps: number, weight?: ArrayLike<number>): Float32Array {
  const d = normalizedSize;
  const rows = x.length / d;
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += x[r * d + j] * x[r * d + j];
    const rstd = 1 / Math.sqrt(sq / d + eps);
    for (let j = 0; j < d; j++) y[r * d + j] = x[r * d + j] * rstd * (weight ? weight[j] : 1);
  }
  return y;
}

/** torch.var_mean(x, dim=axes, correction): statistics over `axes`, in the kept dims' order. */
export function refMoments(
  x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], correction: number,
): { mean: Float32Array; variance: Float32Array } {
  const rank = shape.length;
  const reduced = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  const kept = shape.map((_, i) => i).filter((i) => !reduced.has(i));
  const strides = shape.map((_, i) => sizeOf(shape.slice(i + 1)));
  const groups = Math.max(1, sizeOf(kept.map((i) => shape[i])));
  const groupOf = (flat: number) => {
    let g = 0;
    for (const d of kept) g = g * shape[d] + (Math.floor(flat / strides[d]) % shape[d]);
    return g;
  };
  const { count, mean, m2 } = groupMoments(x, groups, groupOf);
  return {
    mean: Float32Array.from(mean),
    variance: Float32Array.from(m2, (v, g) => (count[g] - correction > 0 ? v / (count[g] - correction) : NaN)),
  };
}

/** What a normalization groups by, as the oracle sees it. */
export interface Grouping {
  groups: number;
  /** Statistics group of flat element i. */
  groupOf: (i: number) => number;
  /** Affine parameter index of flat element i (channel, or position in normalized_shape). */
  paramOf: (i: number) => number;
}

export function grouping(
  op: 'batchNorm' | 'instanceNorm' | 'groupNorm' | 'layerNorm' | 'rmsNorm' | 'moments',
  shape: readonly number[], layout: Layout,
  o: { numGroups?: number; normalizedShape?: readonly number[]; axes?: readonly number[] } = {},
): Grouping {
  if (op === 'layerNorm' || op === 'rmsNorm') {
    const d = sizeOf(o.normalizedShape!);
    return { groups: sizeOf(shape) / d, groupOf: (i) => Math.floor(i / d), paramOf: (i) => i % d };
  }
  if (op === 'moments') {
    const rank = shape.length;
    const reduced = new Set(o.axes!.map((a) => (a < 0 ? a + rank : a)));
    const kept = shape.map((_, i) => i).filter((i) => !reduced.has(i));
    const strides = shape.map((_, i) => sizeOf(shape.slice(i + 1)));
    const groupOf = (flat: number) => {
      let g = 0;
      for (const d of kept) g = g * shape[d] + (Math.floor(flat / strides[d]) % shape[d]);
      return g;
    };
    return { groups: Math.max(1, sizeOf(kept.map((i) => shape[i]))), groupOf, paramOf: () => 0 };
  }
  const geo = channelGeometry(shape, layout);
  const paramOf = (i: number) => channelOf(i, geo, layout).channel;
  if (op === 'batchNorm') return { groups: geo.c, groupOf: paramOf, paramOf };
  const g = op === 'instanceNorm' ? geo.c : o.numGroups!;
  const perGroup = geo.c / g;
  return {
    groups: geo.n * g,
    groupOf: (i) => {
      const { sample, channel } = channelOf(i, geo, layout);
      return sample * g + Math.floor(channel / perGroup);
    },
    paramOf,
  };
}
