/**
 * Every bad input gets a NormGpuError with the right `code`, on both backends, thrown
 * synchronously (never a rejected promise, never a device error later) and before any GPU
 * work: on webgpu the device sees no buffer, encoder, bind group, pipeline, queue write or
 * submit during the rejected call, and `engine.memory()` (live and pooled bytes) is unchanged.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEngine, NormGpuError, Tensor, type Engine, type ErrorCode } from '../src/index';
import { BufferUsage } from '../src/webgpu-flags';
import { asyncErrorCode, generate, makeGpuEngine, trackGpuWork } from './support/gpu';

type Kind = 'cpu' | 'webgpu';

interface Fixtures {
  engine: Engine;
  /** NCHW [2, 3, 4, 5]. */
  x: Tensor;
  /** Channels-last [2, 4, 5, 3] (C = 3). */
  xl: Tensor;
  /** [4, 6]. */
  x2: Tensor;
  /** [5]. */
  x1: Tensor;
  /** One value per channel: [1, 3], [1, 3, 1, 1], channels-last [1, 1, 1, 3]. */
  one2: Tensor;
  one4: Tensor;
  oneL: Tensor;
  /** [2, 3, 1, 1]: one spatial element. */
  spatial1: Tensor;
  w3: Tensor;
  w4: Tensor;
  rm: Tensor;
  rv: Tensor;
  disposedX: Tensor;
  disposedW: Tensor;
  /** [2, 3, 4, 5] of another engine of the same backend, and of the other backend. */
  foreignX: Tensor;
  crossX: Tensor;
  foreignW: Tensor;
  foreignRm: Tensor;
  /** A disposed engine and a tensor it made before its disposal. */
  deadEngine: Engine;
  deadX: Tensor;
  /** WebGPU only: user buffers for fromGPUBuffer. */
  smallBuffer?: GPUBuffer;
  noStorageBuffer?: GPUBuffer;
  noCopySrcBuffer?: GPUBuffer;
}

interface Case {
  name: string;
  code: ErrorCode;
  run: (f: Fixtures) => unknown;
  only?: Kind;
}

const t = (e: Engine, shape: number[], layout: 'channels-first' | 'channels-last' = 'channels-first', seed = 1) =>
  e.tensor(generate('normal', shape.reduce((a, b) => a * b, 1), seed), shape, { layout });

const f3 = () => new Float32Array(3);
const ones3 = () => new Float32Array([1, 1, 1]);
const evalStats = (f: Fixtures) => ({ runningMean: f.rm, runningVar: f.rv });

const cases: Case[] = [
  // --- shapes and layouts ---------------------------------------------------------------
  { name: 'tensor with a negative dim', code: 'INVALID_SHAPE', run: (f) => f.engine.tensor([1, 2], [2, -1]) },
  { name: 'tensor with a fractional dim', code: 'INVALID_SHAPE', run: (f) => f.engine.tensor([1, 2], [2.5]) },
  { name: 'tensor with a NaN dim', code: 'INVALID_SHAPE', run: (f) => f.engine.tensor([1, 2], [NaN, 2]) },
  { name: 'tensor with an empty shape', code: 'INVALID_SHAPE', run: (f) => f.engine.tensor([1], []) },
  { name: 'tensor with a shape that is not an array', code: 'INVALID_SHAPE', run: (f) => f.engine.tensor([1], 1 as unknown as number[]) },
  { name: 'batchNorm of a 1-D tensor', code: 'INVALID_SHAPE', run: (f) => f.engine.batchNorm(f.x1, evalStats(f)) },
  { name: 'batchNorm training of a 1-D tensor', code: 'INVALID_SHAPE', run: (f) => f.engine.batchNorm(f.x1, { training: true }) },
  { name: 'instanceNorm of a 2-D tensor', code: 'INVALID_SHAPE', run: (f) => f.engine.instanceNorm(f.x2) },
  { name: 'groupNorm of a 1-D tensor', code: 'INVALID_SHAPE', run: (f) => f.engine.groupNorm(f.x1, { numGroups: 1 }) },
  { name: 'tensor with layout "NCHW"', code: 'INVALID_LAYOUT', run: (f) => f.engine.tensor([1, 2], [2], { layout: 'NCHW' as never }) },
  { name: 'tensor with layout "NHWC"', code: 'INVALID_LAYOUT', run: (f) => f.engine.tensor([1, 2], [2], { layout: 'NHWC' as never }) },
  { name: 'tensor with too few values', code: 'DATA_LENGTH_MISMATCH', run: (f) => f.engine.tensor([1, 2, 3, 4, 5], [2, 3]) },
  { name: 'tensor with too many values', code: 'DATA_LENGTH_MISMATCH', run: (f) => f.engine.tensor(new Float32Array(7), [2, 3]) },
  { name: 'tensor with a zero dim', code: 'EMPTY_TENSOR', run: (f) => f.engine.tensor([], [0, 3]) },
  { name: 'tensor with a zero inner dim', code: 'EMPTY_TENSOR', run: (f) => f.engine.tensor([], [2, 0, 4]) },

  // --- parameters ------------------------------------------------------------------------
  { name: 'batchNorm weight of C+1', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), weight: [1, 1, 1, 1] }) },
  { name: 'batchNorm bias of C-1', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), bias: new Float32Array(2) }) },
  { name: 'batchNorm weight Tensor of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), weight: f.w4 }) },
  { name: 'batchNorm runningMean of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { runningMean: [0, 0], runningVar: ones3() }) },
  { name: 'batchNorm runningVar of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { runningMean: f3(), runningVar: new Float32Array(5) }) },
  { name: 'batchNorm training runningVar Tensor of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f.rm, runningVar: f.w4 }) },
  { name: 'batchNorm channels-last weight of the wrong size (C is the last dim)', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.batchNorm(f.xl, { training: true, weight: new Float32Array(4) }) },
  { name: 'layerNorm weight of the last dim only', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: [4, 5], weight: new Float32Array(5) }) },
  { name: 'layerNorm bias of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: 5, bias: new Float32Array(4) }) },
  { name: 'rmsNorm weight of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.rmsNorm(f.x2, { normalizedShape: [6], weight: f.w4 }) },
  { name: 'instanceNorm weight of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.instanceNorm(f.x, { weight: f.w4 }) },
  { name: 'groupNorm bias of the wrong size', code: 'PARAM_LENGTH_MISMATCH', run: (f) => f.engine.groupNorm(f.x, { numGroups: 3, bias: [0, 0] }) },
  { name: 'weight of a wrong type', code: 'INVALID_ARGUMENT', run: (f) => f.engine.instanceNorm(f.x, { weight: 'abc' as never }) },
  { name: 'input that is not a Tensor', code: 'INVALID_ARGUMENT', run: (f) => f.engine.layerNorm(new Float32Array(6) as never, { normalizedShape: 6 }) },

  // --- groups and normalized shapes -------------------------------------------------------
  { name: 'numGroups 2 of 3 channels', code: 'GROUPS_NOT_DIVISIBLE', run: (f) => f.engine.groupNorm(f.x, { numGroups: 2 }) },
  { name: 'numGroups 2 of 3 channels, channels-last', code: 'GROUPS_NOT_DIVISIBLE', run: (f) => f.engine.groupNorm(f.xl, { numGroups: 2 }) },
  { name: 'numGroups larger than C', code: 'GROUPS_NOT_DIVISIBLE', run: (f) => f.engine.groupNorm(f.x, { numGroups: 6 }) },
  { name: 'numGroups 4 of a [4, 6] tensor', code: 'GROUPS_NOT_DIVISIBLE', run: (f) => f.engine.groupNorm(f.x2, { numGroups: 4 }) },
  { name: 'numGroups 0', code: 'INVALID_ARGUMENT', run: (f) => f.engine.groupNorm(f.x, { numGroups: 0 }) },
  { name: 'numGroups 1.5', code: 'INVALID_ARGUMENT', run: (f) => f.engine.groupNorm(f.x, { numGroups: 1.5 }) },
  { name: 'layerNorm normalizedShape not the trailing dim', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: [4] }) },
  { name: 'layerNorm normalizedShape as a wrong number', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: 4 }) },
  { name: 'layerNorm normalizedShape of leading dims', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: [3, 4] }) },
  { name: 'layerNorm normalizedShape longer than the input', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: [1, 2, 3, 4, 5] }) },
  { name: 'layerNorm normalizedShape empty', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: [] }) },
  { name: 'layerNorm without options', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.layerNorm(f.x, undefined as never) },
  { name: 'rmsNorm normalizedShape not the trailing dims', code: 'NORMALIZED_SHAPE_MISMATCH', run: (f) => f.engine.rmsNorm(f.x, { normalizedShape: [5, 4] }) },

  // --- eps and momentum -------------------------------------------------------------------
  ...(['NaN', 'Infinity', '-Infinity', '-1e-5'] as const).flatMap((s): Case[] => {
    const eps = Number(s);
    return [
      { name: `batchNorm eval eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), eps }) },
      { name: `batchNorm training eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.batchNorm(f.x, { training: true, eps }) },
      { name: `layerNorm eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: 5, eps }) },
      { name: `rmsNorm eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.rmsNorm(f.x, { normalizedShape: 5, eps }) },
      { name: `instanceNorm eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.instanceNorm(f.x, { eps }) },
      { name: `groupNorm eps ${s}`, code: 'INVALID_EPS', run: (f) => f.engine.groupNorm(f.x, { numGroups: 3, eps }) },
    ];
  }),
  { name: 'eps as a string', code: 'INVALID_EPS', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: 5, eps: '1e-5' as never }) },
  ...([-0.1, 1.5, NaN, Infinity]).flatMap((momentum): Case[] => [
    { name: `batchNorm training momentum ${momentum}`, code: 'INVALID_MOMENTUM', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f.rm, runningVar: f.rv, momentum }) },
    { name: `batchNorm eval momentum ${momentum}`, code: 'INVALID_MOMENTUM', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), momentum }) },
  ]),

  // --- batch-norm statistics ----------------------------------------------------------------
  { name: 'batchNorm training of [1, C]', code: 'TOO_FEW_VALUES', run: (f) => f.engine.batchNorm(f.one2, { training: true }) },
  { name: 'batchNorm training of [1, C, 1, 1]', code: 'TOO_FEW_VALUES', run: (f) => f.engine.batchNorm(f.one4, { training: true, runningMean: f.rm, runningVar: f.rv }) },
  { name: 'batchNorm training of channels-last [1, 1, 1, C]', code: 'TOO_FEW_VALUES', run: (f) => f.engine.batchNorm(f.oneL, { training: true }) },
  { name: 'instanceNorm with one spatial element', code: 'TOO_FEW_VALUES', run: (f) => f.engine.instanceNorm(f.spatial1) },
  { name: 'batchNorm eval without running stats', code: 'RUNNING_STATS_REQUIRED', run: (f) => f.engine.batchNorm(f.x) },
  { name: 'batchNorm eval (training: false) with runningMean only', code: 'RUNNING_STATS_REQUIRED', run: (f) => f.engine.batchNorm(f.x, { training: false, runningMean: f.rm }) },
  { name: 'batchNorm training with runningVar only', code: 'RUNNING_STATS_REQUIRED', run: (f) => f.engine.batchNorm(f.x, { training: true, runningVar: f.rv }) },
  { name: 'batchNorm training with Float32Array running stats', code: 'RUNNING_STATS_NOT_TENSOR', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f3(), runningVar: ones3() }) },
  { name: 'batchNorm training with number[] running stats', code: 'RUNNING_STATS_NOT_TENSOR', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: [0, 0, 0], runningVar: [1, 1, 1] }) },
  { name: 'batchNorm training with one Tensor and one array', code: 'RUNNING_STATS_NOT_TENSOR', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f.rm, runningVar: ones3() }) },

  // --- tensor and engine lifetimes ------------------------------------------------------------
  { name: 'disposed input to batchNorm', code: 'DISPOSED_TENSOR', run: (f) => f.engine.batchNorm(f.disposedX, evalStats(f)) },
  { name: 'disposed input to layerNorm', code: 'DISPOSED_TENSOR', run: (f) => f.engine.layerNorm(f.disposedX, { normalizedShape: 5 }) },
  { name: 'disposed input to rmsNorm', code: 'DISPOSED_TENSOR', run: (f) => f.engine.rmsNorm(f.disposedX, { normalizedShape: 5 }) },
  { name: 'disposed input to instanceNorm', code: 'DISPOSED_TENSOR', run: (f) => f.engine.instanceNorm(f.disposedX) },
  { name: 'disposed input to groupNorm', code: 'DISPOSED_TENSOR', run: (f) => f.engine.groupNorm(f.disposedX, { numGroups: 1 }) },
  { name: 'disposed input to moments', code: 'DISPOSED_TENSOR', run: (f) => f.engine.moments(f.disposedX, { axes: [0, 2, 3] }) },
  { name: 'disposed input to explain', code: 'DISPOSED_TENSOR', run: (f) => f.engine.explain('layerNorm', f.disposedX, { normalizedShape: 5 }) },
  { name: 'disposed weight', code: 'DISPOSED_TENSOR', run: (f) => f.engine.batchNorm(f.x, { ...evalStats(f), weight: f.disposedW }) },
  { name: 'disposed bias', code: 'DISPOSED_TENSOR', run: (f) => f.engine.instanceNorm(f.x, { bias: f.disposedW }) },
  { name: 'disposed runningMean in training', code: 'DISPOSED_TENSOR', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f.disposedW, runningVar: f.rv }) },
  // The host weight comes first in resolution order: it must not be uploaded before the
  // disposed bias is found.
  { name: 'disposed bias after a host weight', code: 'DISPOSED_TENSOR', run: (f) => f.engine.groupNorm(f.x, { numGroups: 3, weight: ones3(), bias: f.disposedW }) },
  { name: 'foreign bias after a host weight', code: 'FOREIGN_TENSOR', run: (f) => f.engine.instanceNorm(f.x, { weight: [1, 1, 1], bias: f.foreignW }) },
  { name: 'buffer of a disposed tensor', code: 'DISPOSED_TENSOR', run: (f) => f.disposedX.buffer },
  { name: 'input of another engine', code: 'FOREIGN_TENSOR', run: (f) => f.engine.layerNorm(f.foreignX, { normalizedShape: 5 }) },
  { name: 'input of an engine of the other backend', code: 'FOREIGN_TENSOR', run: (f) => f.engine.groupNorm(f.crossX, { numGroups: 3 }) },
  { name: 'moments of a foreign tensor', code: 'FOREIGN_TENSOR', run: (f) => f.engine.moments(f.foreignX, { axes: [-1] }) },
  { name: 'weight of another engine', code: 'FOREIGN_TENSOR', run: (f) => f.engine.instanceNorm(f.x, { weight: f.foreignW }) },
  { name: 'runningMean of another engine', code: 'FOREIGN_TENSOR', run: (f) => f.engine.batchNorm(f.x, { training: true, runningMean: f.foreignRm, runningVar: f.rv }) },
  { name: 'tensor() on a disposed engine', code: 'DISPOSED_ENGINE', run: (f) => f.deadEngine.tensor([1, 2], [2]) },
  { name: 'layerNorm on a disposed engine', code: 'DISPOSED_ENGINE', run: (f) => f.deadEngine.layerNorm(f.deadX, { normalizedShape: 5 }) },
  { name: 'batchNorm on a disposed engine', code: 'DISPOSED_ENGINE', run: (f) => f.deadEngine.batchNorm(f.deadX, { training: true }) },
  { name: 'moments on a disposed engine', code: 'DISPOSED_ENGINE', run: (f) => f.deadEngine.moments(f.deadX, { axes: [0] }) },
  { name: 'explain on a disposed engine', code: 'DISPOSED_ENGINE', run: (f) => f.deadEngine.explain('groupNorm', f.deadX, { numGroups: 1 }) },

  // --- moments axes -------------------------------------------------------------------------
  { name: 'moments axes empty', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [] }) },
  { name: 'moments axes missing', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, {} as never) },
  { name: 'moments axis 4 of rank 4', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [0, 4] }) },
  { name: 'moments axis -5 of rank 4', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [-5] }) },
  { name: 'moments fractional axis', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [1.5] }) },
  { name: 'moments repeated axis', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [2, 2] }) },
  { name: 'moments repeated axis via a negative index', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [1, -3] }) },
  { name: 'moments axes (0, 2) of [2, 3, 4, 5]: reduced/kept/reduced/kept', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.x, { axes: [0, 2] }) },
  { name: 'moments axes (-4, -2) of channels-last [2, 4, 5, 3]', code: 'INVALID_AXES', run: (f) => f.engine.moments(f.xl, { axes: [-4, -2] }) },
  { name: 'moments correction -1', code: 'INVALID_ARGUMENT', run: (f) => f.engine.moments(f.x, { axes: [0], correction: -1 }) },

  // --- other arguments ----------------------------------------------------------------------
  { name: 'explain of an unknown op', code: 'INVALID_ARGUMENT', run: (f) => f.engine.explain('softmax' as never, f.x) },
  { name: 'fromGPUBuffer on the CPU backend', code: 'INVALID_ARGUMENT', only: 'cpu', run: (f) => f.engine.fromGPUBuffer({} as GPUBuffer, [2]) },
  { name: 'buffer of a CPU tensor', code: 'INVALID_ARGUMENT', only: 'cpu', run: (f) => f.x.buffer },
  { name: 'fromGPUBuffer with a buffer too small for the shape', code: 'DATA_LENGTH_MISMATCH', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.smallBuffer!, [2, 3]) },
  { name: 'fromGPUBuffer without STORAGE usage', code: 'INVALID_ARGUMENT', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.noStorageBuffer!, [4]) },
  { name: 'fromGPUBuffer without COPY_SRC usage', code: 'INVALID_ARGUMENT', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.noCopySrcBuffer!, [4]) },
  { name: 'fromGPUBuffer with a bad layout', code: 'INVALID_LAYOUT', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.smallBuffer!, [4], { layout: 'nhwc' as never }) },
  { name: 'fromGPUBuffer with a bad shape', code: 'INVALID_SHAPE', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.smallBuffer!, [-4]) },
  { name: 'fromGPUBuffer with an empty shape', code: 'EMPTY_TENSOR', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.smallBuffer!, [0]) },
  { name: 'fromGPUBuffer on a disposed engine', code: 'DISPOSED_ENGINE', only: 'webgpu', run: (f) => f.deadEngine.fromGPUBuffer(f.smallBuffer!, [4]) },
];

const makeEngine = (kind: Kind) => (kind === 'webgpu' ? makeGpuEngine() : createEngine({ backend: 'cpu' }));

describe.each(['cpu', 'webgpu'] as const)('%s backend', (kind) => {
  let f: Fixtures;
  const engines: Engine[] = [];

  beforeAll(async () => {
    const engine = await makeEngine(kind);
    const sibling = await makeEngine(kind);
    const cross = await makeEngine(kind === 'cpu' ? 'webgpu' : 'cpu');
    const deadEngine = await makeEngine(kind);
    engines.push(engine, sibling, cross, deadEngine);
    const disposedX = t(engine, [2, 3, 4, 5]);
    const disposedW = t(engine, [3]);
    disposedX.dispose();
    disposedW.dispose();
    const deadX = t(deadEngine, [2, 3, 4, 5]);
    deadEngine.dispose();
    f = {
      engine,
      x: t(engine, [2, 3, 4, 5]),
      xl: t(engine, [2, 4, 5, 3], 'channels-last'),
      x2: t(engine, [4, 6]),
      x1: t(engine, [5]),
      one2: t(engine, [1, 3]),
      one4: t(engine, [1, 3, 1, 1]),
      oneL: t(engine, [1, 1, 1, 3], 'channels-last'),
      spatial1: t(engine, [2, 3, 1, 1]),
      w3: engine.tensor([1, 2, 3], [3]),
      w4: engine.tensor([1, 2, 3, 4], [4]),
      rm: engine.tensor([0, 0, 0], [3]),
      rv: engine.tensor([1, 1, 1], [3]),
      disposedX,
      disposedW,
      foreignX: t(sibling, [2, 3, 4, 5]),
      crossX: t(cross, [2, 3, 4, 5]),
      foreignW: sibling.tensor([1, 1, 1], [3]),
      foreignRm: sibling.tensor([0, 0, 0], [3]),
      deadEngine,
      deadX,
    };
    if (kind === 'webgpu') {
      const device = engine.device!;
      f.smallBuffer = device.createBuffer({ size: 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
      f.noStorageBuffer = device.createBuffer({ size: 64, usage: BufferUsage.COPY_SRC | BufferUsage.COPY_DST });
      f.noCopySrcBuffer = device.createBuffer({ size: 64, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST });
    }
  });

  afterAll(() => {
    f?.smallBuffer?.destroy();
    f?.noStorageBuffer?.destroy();
    f?.noCopySrcBuffer?.destroy();
    for (const e of engines) e.dispose();
  });

  test.each(cases.filter((c) => !c.only || c.only === kind).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const before = f.engine.memory();
    const tracker = kind === 'webgpu' ? trackGpuWork(f.engine) : null;
    let thrown: unknown = undefined;
    let returned: unknown = undefined;
    try {
      returned = c.run(f);
    } catch (e) {
      thrown = e;
    } finally {
      tracker?.restore();
    }
    if (returned instanceof Promise) returned.catch(() => {}); // a rejection would not be synchronous
    expect(thrown, `expected a synchronous NormGpuError ${c.code}, the call returned ${String(returned)}`).toBeInstanceOf(NormGpuError);
    expect((thrown as NormGpuError).code).toBe(c.code);
    expect((thrown as NormGpuError).message.startsWith(`${c.code}: `)).toBe(true);
    expect(f.engine.memory(), 'engine memory changed by a rejected call').toEqual(before);
    if (tracker) expect(tracker.log, 'GPU calls made by a rejected call').toEqual([]);
  });

  // A promise-returning call never throws: its errors are rejections.
  test('read() of a disposed tensor rejects with DISPOSED_TENSOR', async () => {
    expect(await asyncErrorCode(() => f.disposedX.read())).toBe('DISPOSED_TENSOR');
  });

  test('the fixtures themselves are valid: the same calls with good arguments succeed', async () => {
    // Guards the cases above against passing for the wrong reason (e.g. a broken fixture).
    const y = [
      f.engine.batchNorm(f.x, evalStats(f)),
      f.engine.batchNorm(f.x, { training: true, runningMean: f.rm, runningVar: f.rv }),
      f.engine.batchNorm(f.xl, { training: true, weight: f.w3 }),
      f.engine.layerNorm(f.x, { normalizedShape: [4, 5], weight: new Float32Array(20) }),
      f.engine.rmsNorm(f.x2, { normalizedShape: [6] }),
      f.engine.instanceNorm(f.x, { weight: f.w3 }),
      f.engine.groupNorm(f.x, { numGroups: 3, bias: [0, 0, 0] }),
      f.engine.groupNorm(f.xl, { numGroups: 1 }),
      f.engine.batchNorm(f.one4, evalStats(f)),
      f.engine.moments(f.x, { axes: [1, 3] }).mean,
      f.engine.moments(f.xl, { axes: [0, 1, 2] }).variance,
    ];
    for (const r of y) {
      const data = await r.read();
      expect(data.length).toBe(r.size);
      r.dispose();
    }
  });
});

describe('createEngine', () => {
  test.each([
    ['backend "nope"', { backend: 'nope' }],
    ['backend 42', { backend: 42 }],
    ['kernels "fast"', { kernels: 'fast' }],
  ])('%s is INVALID_ARGUMENT', async (_name, options) => {
    let thrown: unknown;
    try {
      await createEngine(options as never);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(NormGpuError);
    expect((thrown as NormGpuError).code).toBe('INVALID_ARGUMENT');
  });
});
