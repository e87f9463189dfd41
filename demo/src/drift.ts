/**
 * The drifting data of the "Train vs eval" tab: batch t of a run is N(mean(c, t), std(c, t))
 * samples per channel, seeded, so the e2e test regenerates the very same batches to check the
 * page's running statistics against a float64 reference.
 */
import { rng } from '../bench/workloads';

export type Drift = 'linear' | 'jump' | 'none';

export const DRIFTS: readonly { id: Drift; label: string }[] = [
  { id: 'linear', label: 'linear drift (mean and spread grow)' },
  { id: 'jump', label: 'a jump halfway' },
  { id: 'none', label: 'no drift' },
];

/** The true mean and std of channel c at step t of `steps`. */
export function trueStats(drift: Drift, c: number, t: number, steps: number): { mean: number; std: number } {
  const sign = c % 2 === 0 ? 1 : -1;
  const u = steps > 1 ? t / (steps - 1) : 0;
  switch (drift) {
    case 'linear': return { mean: sign * 3 * u, std: 1 + u };
    case 'jump': return t < steps / 2 ? { mean: 0, std: 1 } : { mean: 3 * sign, std: 2 };
    case 'none': return { mean: 1 + c, std: 1 + 0.5 * c };
  }
}

/** Batch t as a channels-first [N, C, H, W] Float32Array (`shape`), seed `seed + t`. */
export function driftBatch(drift: Drift, t: number, steps: number, shape: readonly [number, number, number, number], seed: number): Float32Array {
  const [n, c, h, w] = shape;
  const random = rng(seed + t);
  const out = new Float32Array(n * c * h * w);
  const plane = h * w;
  for (let i = 0; i < out.length; i++) {
    const { mean, std } = trueStats(drift, Math.floor(i / plane) % c, t, steps);
    // Box–Muller, one value per pair of draws.
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    out[i] = mean + std * z;
  }
  return out;
}

/** A channels-first [N, C, ...spatial] array moved to channels-last [N, ...spatial, C]. */
export function toChannelsLast(x: Float32Array, n: number, c: number): Float32Array {
  const spatial = x.length / (n * c);
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let s = 0; s < spatial; s++) out[(b * spatial + s) * c + ch] = x[(b * c + ch) * spatial + s];
    }
  }
  return out;
}
