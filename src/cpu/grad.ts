/**
 * CPU twins of the backward stages (shaders/saved_stats.wgsl, reduce_grad.wgsl, merge_grad.wgsl,
 * apply_grad.wgsl), in float64: the reference the GPU kernels are tested against. They walk the
 * forward's [O, P, Q, S] view: element (o, p, q, s) is in group o * Q + q and has parameter
 * floor((q * S + s) / paramS) (spec.ts), which covers every op and layout.
 */
import type { GradSpec } from '../plan/grad';
import type { NormSpec } from '../plan/spec';
import { groupCount, groupSize } from '../plan/view';
import { finalizeStats, reduceStats } from './stages';

/** Twin of saved_stats.wgsl: the float32 mean and rstd a forward of `spec` saves. */
export function savedStats(
  spec: NormSpec, x: Float32Array, runningMean?: Float32Array, runningVar?: Float32Array,
): { mean: Float32Array; rstd: Float32Array } {
  const reduced = spec.mode === 'running' ? null : reduceStats(x, spec.view, spec.mode === 'rms');
  const { mean, rstd } = finalizeStats({ ...spec, updateRunning: false }, reduced, runningMean, runningVar);
  return { mean: Float32Array.from(mean), rstd: Float32Array.from(rstd) };
}

/** Per group: its centre, rstd, mean(g) and mean(g * x̂) (merge_grad.wgsl's table). */
export interface GradTable {
  centre: Float64Array;
  rstd: Float64Array;
  meanG: Float64Array;
  meanGX: Float64Array;
}

/** Visit every element as (flat index, group, parameter). */
function visit(spec: NormSpec, f: (i: number, g: number, k: number) => void): void {
  const v = spec.view;
  let i = 0;
  for (let o = 0; o < v.o; o++) {
    for (let p = 0; p < v.p; p++) {
      for (let q = 0; q < v.q; q++) {
        const g = o * v.q + q;
        for (let s = 0; s < v.s; s++) f(i++, g, Math.floor((q * v.s + s) / spec.paramS));
      }
    }
  }
}

/**
 * Twin of reduce_grad.wgsl with merge_grad.wgsl's group merge: per group, Σ g, Σ g * (x - mean)
 * and the centre correction Σ (x - mean) / M, folded into the table dx needs.
 */
export function reduceGrad(
  g: GradSpec, dy: Float32Array, x: Float32Array, mean: Float32Array | undefined, rstd: Float32Array, weight?: Float32Array,
): GradTable {
  const spec = g.norm;
  const groups = groupCount(spec.view);
  const m = groupSize(spec.view);
  const rms = spec.mode === 'rms';
  const centre = Float64Array.from({ length: groups }, (_, i) => (rms || !mean ? 0 : mean[i]));
  const table = { centre, rstd: Float64Array.from(rstd), meanG: new Float64Array(groups), meanGX: new Float64Array(groups) };
  if (spec.mode === 'running') return table;
  const d = new Float64Array(groups);
  visit(spec, (i, grp) => { d[grp] += x[i] - centre[grp]; });
  if (!rms) for (let grp = 0; grp < groups; grp++) centre[grp] += d[grp] / m;
  const sumG = new Float64Array(groups);
  const sumGX = new Float64Array(groups);
  visit(spec, (i, grp, k) => {
    const gi = dy[i] * (weight ? weight[k] : 1);
    sumG[grp] += gi;
    sumGX[grp] += gi * (x[i] - centre[grp]);
  });
  for (let grp = 0; grp < groups; grp++) {
    table.meanG[grp] = rms ? 0 : sumG[grp] / m;
    table.meanGX[grp] = table.rstd[grp] * sumGX[grp] / m;
  }
  return table;
}

/** Twin of merge_grad.wgsl's parameter merge: dweight = Σ dy * x̂, dbias = Σ dy per parameter. */
export function paramGrad(g: GradSpec, dy: Float32Array, x: Float32Array, t: GradTable): { dweight: Float32Array; dbias: Float32Array } {
  const dw = new Float64Array(g.params);
  const db = new Float64Array(g.params);
  visit(g.norm, (i, grp, k) => {
    dw[k] += dy[i] * (x[i] - t.centre[grp]) * t.rstd[grp];
    db[k] += dy[i];
  });
  return { dweight: Float32Array.from(dw), dbias: Float32Array.from(db) };
}

/** Twin of apply_grad.wgsl: dx, rounded once to float32. */
export function applyGrad(g: GradSpec, dy: Float32Array, x: Float32Array, t: GradTable, weight?: Float32Array): Float32Array {
  const dx = new Float32Array(x.length);
  const running = g.norm.mode === 'running';
  visit(g.norm, (i, grp, k) => {
    const gi = dy[i] * (weight ? weight[k] : 1);
    const r = t.rstd[grp];
    dx[i] = running ? gi * r : r * (gi - t.meanG[grp] - (x[i] - t.centre[grp]) * r * t.meanGX[grp]);
  });
  return dx;
}
