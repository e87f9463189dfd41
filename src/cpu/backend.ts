import type {
  Backend, ColumnMoments, ColumnRequest, KernelChoice, NormOperands, PreparedImages, Recording, ScaleRequest, Storage,
} from '../backend';
import { check, NormGpuError } from '../errors';
import { readPixels, type ExternalImage, type ImageInput } from '../image-input';
import type { PreprocessSpec } from '../plan/preprocess';
import type { NormSpec } from '../plan/spec';
import { columnStats, mergeStats, scaleFeatures } from './column-stats';
import { preprocessImage } from './preprocess';
import { applyNorm, finalizeMoments, finalizeStats, reduceStats } from './stages';

const dataOf = (s: Storage | undefined): Float32Array | undefined => {
  if (s && s.kind !== 'cpu') throw new Error('internal: GPU storage given to the CPU backend');
  return s?.data;
};

/** The float64 reference backend: runs the CPU twins of the GPU stages. */
export class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;
  // A Float32Array's length is bounded by the JS engine (2^32 - 1 bytes is safe everywhere).
  readonly maxBindingBytes = 2 ** 32 - 4;

  readonly info = null;
  readonly device = null;
  readonly lost = null;
  onLost = null;
  #disposed = false;

  assertUsable(): void {
    check(!this.#disposed, 'DISPOSED_ENGINE', 'the engine was disposed');
  }

  upload(data: Float32Array): Storage {
    return { kind: 'cpu', data: data.slice() };
  }

  async readStorage(storage: Storage): Promise<Float32Array> {
    this.assertUsable();
    return dataOf(storage)!.slice();
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

  preprocess(_spec: PreprocessSpec, sources: readonly ImageInput[]): PreparedImages {
    sources.forEach((s, i) => check(s.kind !== 'texture', 'UNSUPPORTED_SOURCE', `image ${i}: a GPUTexture needs the WebGPU backend`));
    const pixels = sources.map((s, i) => (s.kind === 'bytes' ? { data: s.data, channels: s.channels } : readPixels(s as ExternalImage, i)));
    return (sub, start, end) => ({ kind: 'cpu', data: preprocessImage(sub, pixels.slice(start, end)) });
  }

  async columnMoments(x: Storage, r: ColumnRequest): Promise<ColumnMoments> {
    this.assertUsable();
    const columns = columnStats(dataOf(x)!, r.rows, r.width, r.skipNaN);
    return { columns: r.wantColumns ? columns : null, groups: r.groups ? mergeStats(columns, ...r.groups) : null };
  }

  scaleFeatures(x: Storage, _count: number, r: ScaleRequest): Storage {
    return { kind: 'cpu', data: scaleFeatures(dataOf(x)!, r.width, r.lines, r.clip) };
  }

  /** Host memory is the JS engine's to manage: nothing is counted or pooled. */
  memory(): { liveBytes: number; pooledBytes: number } {
    return { liveBytes: 0, pooledBytes: 0 };
  }

  trim(): void {}

  /** Work runs when it is called: nothing is ever pending. */
  flush(): void {}

  async prepare(): Promise<void> {}

  encode<T>(): Recording<T> {
    throw new NormGpuError('INVALID_ARGUMENT', 'encode() records into a GPUCommandEncoder: it needs the WebGPU backend');
  }

  dispose(): void {
    this.#disposed = true;
  }
}
