import type {
  Backend, ColumnMoments, ColumnRequest, GradOperands, GradStorages, KernelChoice, NormOperands, PreparedImages, Recording, ScaleRequest, Storage,
} from '../backend';
import { sameMemory } from '../backend';
import { check, NormGpuError } from '../errors';
import { readPixels, type ExternalImage, type ImageInput } from '../image-input';
import type { PreprocessKernels, PreprocessSpec } from '../plan/preprocess';
import type { NormSpec } from '../plan/spec';
import { cpuTraffic, type AffineOperands } from '../plan/traffic';
import { mergeStats, reduceStatsRanges, scaleFeatures } from './column-stats';
import { preprocessImage } from './preprocess';
import { fromHalfBits, roundHalf, type DType } from '../half';
import { addResidual, applyNorm, finalizeMoments, finalizeStats, reduceStats } from './stages';
import { applyGrad, paramGrad, reduceGrad, savedStats } from './grad';
import { axpby } from './axpby';
import { cpuGradStages, momentsOf, savedStatsStage, type GradSpec } from '../plan/grad';

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
  readonly tuner = null;
  onLost = null;
  #disposed = false;

  assertUsable(): void {
    check(!this.#disposed, 'DISPOSED_ENGINE', 'the engine was disposed');
  }

  upload(data: Float32Array | Uint16Array): Storage {
    if (data instanceof Uint16Array) return { kind: 'cpu', data: fromHalfBits(data), dtype: 'float16' };
    return { kind: 'cpu', data: data.slice() };
  }

  async readStorage(storage: Storage): Promise<Float32Array> {
    this.assertUsable();
    return dataOf(storage)!.slice();
  }

  releaseStorage(): void {}

  normalize(spec: NormSpec, ops: NormOperands): Storage {
    return this.normalizeWithSum(spec, ops).y;
  }

  normalizeWithSum(spec: NormSpec, ops: NormOperands): { y: Storage; sum: Storage } {
    const x0 = dataOf(ops.x)!;
    const x = spec.residual ? addResidual(x0, dataOf(ops.residual)!, spec.dtype) : x0;
    const reduced = spec.mode === 'running' ? null : reduceStats(x, spec.view, spec.mode === 'rms');
    const affine = finalizeStats(spec, reduced, dataOf(ops.runningMean), dataOf(ops.runningVar));
    return {
      y: { kind: 'cpu', data: applyNorm(spec, x, affine, dataOf(ops.weight), dataOf(ops.bias)), dtype: spec.outputDtype },
      sum: { kind: 'cpu', data: x === x0 ? x0.slice() : x, dtype: spec.dtype },
    };
  }

  cast(x: Storage, _count: number, dtype: DType): Storage {
    const data = dataOf(x)!;
    return { kind: 'cpu', data: dtype === 'float16' ? data.map(roundHalf) : data.slice(), dtype };
  }

  axpby(a: Storage, alpha: number, b: Storage | null, beta: number, _count: number, options: { inPlace?: boolean } = {}): Storage {
    const x = dataOf(a)!;
    // alpha 1 without b copies, as the GPU does: bit for bit, NaN payloads included.
    if (!b && alpha === 1) return { kind: 'cpu', data: x.slice() };
    if (!options.inPlace) return { kind: 'cpu', data: axpby(x, alpha, b ? dataOf(b)! : null, beta) };
    if (!b || sameMemory(a, b)) throw new Error('internal: axpby in place needs a b that does not share a\'s memory');
    const y = dataOf(b)!;
    axpby(x, alpha, y, beta, y);
    return b;
  }

  moments(spec: NormSpec, x: Storage): { mean: Storage; variance: Storage } {
    const { mean, variance } = finalizeMoments(spec, reduceStats(dataOf(x)!, spec.view, false));
    const dtype = spec.outputDtype;
    return { mean: { kind: 'cpu', data: mean, dtype }, variance: { kind: 'cpu', data: variance, dtype } };
  }

  savedStats(spec: NormSpec, ops: NormOperands): { mean: Storage; rstd: Storage } {
    const { mean, rstd } = savedStats(spec, dataOf(ops.x)!, dataOf(ops.runningMean), dataOf(ops.runningVar));
    return { mean: { kind: 'cpu', data: mean }, rstd: { kind: 'cpu', data: rstd } };
  }

  backward(spec: GradSpec, ops: GradOperands): GradStorages {
    const [dy, x, weight] = [dataOf(ops.dy)!, dataOf(ops.x)!, dataOf(ops.weight)];
    const table = reduceGrad(spec, dy, x, dataOf(ops.mean), dataOf(ops.rstd)!, weight);
    const out: GradStorages = {};
    if (spec.outputs.input) out.dx = { kind: 'cpu', data: applyGrad(spec, dy, x, table, weight) };
    if (spec.outputs.weight || spec.outputs.bias) {
      const { dweight, dbias } = paramGrad(spec, dy, x, table);
      if (spec.outputs.weight) out.dweight = { kind: 'cpu', data: dweight };
      if (spec.outputs.bias) out.dbias = { kind: 'cpu', data: dbias };
    }
    return out;
  }

  describe(spec: NormSpec, affine: AffineOperands): KernelChoice[] {
    return Object.entries(cpuTraffic(spec, affine)).map(([stage, t]) => ({ stage, variant: 'cpu-float64', workgroups: [], ...t }));
  }

  describeBackward(spec: GradSpec, saved: boolean): KernelChoice[] {
    const stats = spec.norm.mode === 'running' ? [] : this.describe(momentsOf(spec.norm), { weight: false, bias: false });
    return [...(saved ? [] : [...stats, savedStatsStage(spec, null)]), ...cpuGradStages(spec)];
  }

  async prepareBackward(): Promise<void> {}

  preprocess(_spec: PreprocessSpec, sources: readonly ImageInput[], _kernels: PreprocessKernels): PreparedImages {
    sources.forEach((s, i) => check(s.kind !== 'texture', 'UNSUPPORTED_SOURCE', `image ${i}: a GPUTexture needs the WebGPU backend`));
    const pixels = sources.map((s, i) => (s.kind === 'bytes' ? { data: s.data, channels: s.channels } : readPixels(s as ExternalImage, i)));
    return (sub, start, end) => ({ kind: 'cpu', data: preprocessImage(sub, pixels.slice(start, end)) });
  }

  async columnMoments(x: Storage, r: ColumnRequest): Promise<ColumnMoments> {
    this.assertUsable();
    const columns = reduceStatsRanges(dataOf(x)!, r.rows, r.width, r.skipNaN);
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
