import type { Storage } from '../api/tensor';
import type { Backend, KernelChoice, NormOperands } from '../backend';
import type { NormSpec } from '../plan/spec';
import { applyNorm, finalizeMoments, finalizeStats, reduceStats } from './stages';

const dataOf = (s: Storage | undefined): Float32Array | undefined => {
  if (s && s.kind !== 'cpu') throw new Error('internal: GPU storage given to the CPU backend');
  return s?.data;
};

/** The float64 reference backend: runs the CPU twins of the GPU stages. */
export class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;

  upload(data: Float32Array): Storage {
    return { kind: 'cpu', data: data.slice() };
  }

  readStorage(storage: Storage): Promise<Float32Array> {
    return Promise.resolve(dataOf(storage)!.slice());
  }

  releaseStorage(): void {}

  normalize(spec: NormSpec, ops: NormOperands): Storage {
    const x = dataOf(ops.x)!;
    const reduced = spec.mode === 'running' ? null : reduceStats(x, spec.view, spec.mode === 'rms');
    const affine = finalizeStats(spec, reduced, dataOf(ops.runningMean), dataOf(ops.runningVar));
    return { kind: 'cpu', data: applyNorm(spec, x, affine, dataOf(ops.weight), dataOf(ops.bias)) };
  }

  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage } {
    const { mean, variance } = finalizeMoments(spec, reduceStats(dataOf(x)!, spec.view, false));
    return { mean: { kind: 'cpu', data: mean }, variance: { kind: 'cpu', data: variance } };
  }

  describe(spec: NormSpec): KernelChoice[] {
    const stages = spec.mode === 'running' ? [] : ['reduceStats'];
    if (spec.mode !== 'moments') stages.push('finalizeStats', 'applyNorm');
    else stages.push('finalizeMoments');
    return stages.map((stage) => ({ stage, variant: 'cpu-float64', workgroups: [] }));
  }

  dispose(): void {}
}
