/**
 * Every public entry point checks the types of its arguments: `null` or `undefined` where an
 * object is needed, strings, booleans and objects where numbers or arrays are, arrays holding
 * non-numbers, typed arrays of the wrong kind, mapped GPU buffers, data beyond the device's
 * binding limit. Each case asserts the NormGpuError code, that the message names the argument,
 * and that nothing reached the GPU: on webgpu no buffer, encoder, bind group, pipeline, queue
 * write or submit, and `engine.memory()` unchanged. Async entry points reject instead of
 * throwing; the same holds for them. Every case here got a raw TypeError, silent NaN data, or
 * another code or message before these checks existed.
 *
 * The "small" engine has its binding limit lowered to 4 KiB (`maxBindingBytes`), so the
 * TENSOR_TOO_LARGE checks run without allocating hundreds of MiB (scalers.test.ts checks a
 * real default-limits device).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createEngine, DatasetStats, finalizeDatasetStats, MinMaxScaler, mergeDatasetStats, NormGpuError, planPreprocess,
  preprocess, StandardScaler, type DatasetStatsPartial, type Engine, type ErrorCode, type ImageBytes, type Tensor,
} from '../src/index';
import { BufferUsage } from '../src/webgpu-flags';
import { generate, makeGpuEngine, trackGpuWork } from './support/gpu';

type Kind = 'cpu' | 'webgpu';

const SMALL_LIMIT = 4096;

interface Fixtures {
  engine: Engine;
  /** An engine whose binding limit is SMALL_LIMIT bytes. */
  small: Engine;
  /** [2, 3, 4, 5] and [4, 6]. */
  x: Tensor;
  x2: Tensor;
  /** Fitted on 2 features, on `engine` and on `small`. */
  scaler: StandardScaler;
  smallScaler: MinMaxScaler;
  /** WebGPU only: buffers mapped at creation, pending a map, and over the small engine's limit. */
  mapped?: GPUBuffer;
  pending?: GPUBuffer;
  big?: GPUBuffer;
}

interface Case {
  name: string;
  code: ErrorCode;
  /** Text the message must contain: the argument's name. */
  names: string;
  run: (f: Fixtures) => unknown;
  only?: Kind;
}

const image = (w: number, h: number): ImageBytes => ({ data: new Uint8Array(w * h * 3).fill(7), width: w, height: h, channels: 3 });
const evalStats = { runningMean: [0, 0, 0], runningVar: [1, 1, 1] };
const partial = (): DatasetStatsPartial => ({
  format: 'normgpu-dataset-stats-1', images: 1, channels: 1, height: 1, width: 2,
  channel: { count: 2, mean: [0.5], m2: [0.5], min: [0], max: [1] }, pixel: null,
});
const bad = <T>(v: unknown) => v as T;

const cases: Case[] = [
  // --- engine.tensor ------------------------------------------------------------------------
  { name: 'tensor data null', code: 'INVALID_ARGUMENT', names: 'data', run: (f) => f.engine.tensor(bad(null), [2]) },
  { name: 'tensor data a string', code: 'INVALID_ARGUMENT', names: 'data', run: (f) => f.engine.tensor(bad('abcdef'), [6]) },
  { name: 'tensor data a boolean', code: 'INVALID_ARGUMENT', names: 'data', run: (f) => f.engine.tensor(bad(true), [1]) },
  { name: 'tensor data an array-like object', code: 'INVALID_ARGUMENT', names: 'data', run: (f) => f.engine.tensor(bad({ length: 2, 0: 1, 1: 2 }), [2]) },
  { name: 'tensor data with a numeric string', code: 'INVALID_DATA', names: 'data[0]', run: (f) => f.engine.tensor(bad(['1.5', 2]), [2]) },
  { name: 'tensor data with null', code: 'INVALID_DATA', names: 'data[1]', run: (f) => f.engine.tensor(bad([1, null]), [2]) },
  { name: 'tensor data with a hole', code: 'INVALID_DATA', names: 'data[1]', run: (f) => f.engine.tensor(bad([1, , 3]), [3]) },
  { name: 'tensor data with a bigint', code: 'INVALID_DATA', names: 'data[0]', run: (f) => f.engine.tensor(bad([1n]), [1]) },
  { name: 'tensor data an Int32Array', code: 'INVALID_DATA', names: 'data', run: (f) => f.engine.tensor(bad(new Int32Array(2)), [2]) },
  { name: 'tensor data a Uint8Array', code: 'INVALID_DATA', names: 'data', run: (f) => f.engine.tensor(bad(new Uint8Array(2)), [2]) },
  { name: 'tensor options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.tensor([1, 2], [2], bad(null)) },
  { name: 'tensor options a string', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.tensor([1, 2], [2], bad('channels-last')) },
  { name: 'tensor over the binding limit', code: 'TENSOR_TOO_LARGE', names: 'data', run: (f) => f.small.tensor(new Float32Array(2048), [2048]) },

  // --- fromGPUBuffer --------------------------------------------------------------------------
  { name: 'fromGPUBuffer of null', code: 'INVALID_ARGUMENT', names: 'buffer', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(bad(null), [4]) },
  { name: 'fromGPUBuffer of a look-alike object', code: 'INVALID_ARGUMENT', names: 'buffer', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(bad({ size: 64, usage: 0x84 }), [4]) },
  { name: 'fromGPUBuffer of a buffer mapped at creation', code: 'BUFFER_MAPPED', names: 'buffer', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.mapped!, [4]) },
  { name: 'fromGPUBuffer of a buffer with a map pending', code: 'BUFFER_MAPPED', names: 'buffer', only: 'webgpu', run: (f) => f.engine.fromGPUBuffer(f.pending!, [4]) },
  { name: 'fromGPUBuffer options null', code: 'INVALID_ARGUMENT', names: 'options', only: 'webgpu', run: (f) => f.small.fromGPUBuffer(f.big!, [4], bad(null)) },
  { name: 'fromGPUBuffer of a buffer over the binding limit', code: 'TENSOR_TOO_LARGE', names: 'buffer', only: 'webgpu', run: (f) => f.small.fromGPUBuffer(f.big!, [4]) },

  // --- ops and their options -------------------------------------------------------------------
  { name: 'batchNorm options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.batchNorm(f.x, bad(null)) },
  { name: 'batchNorm training a string', code: 'INVALID_ARGUMENT', names: 'training', run: (f) => f.engine.batchNorm(f.x, { training: bad('yes') }) },
  { name: 'batchNorm weight of strings', code: 'INVALID_DATA', names: 'weight[0]', run: (f) => f.engine.batchNorm(f.x, { ...evalStats, weight: bad(['1', '1', '1']) }) },
  { name: 'batchNorm runningMean with an object', code: 'INVALID_DATA', names: 'runningMean[2]', run: (f) => f.engine.batchNorm(f.x, { runningMean: bad([0, 0, {}]), runningVar: [1, 1, 1] }) },
  { name: 'batchNorm bias an Int32Array', code: 'INVALID_DATA', names: 'bias', run: (f) => f.engine.batchNorm(f.x, { ...evalStats, bias: bad(new Int32Array(3)) }) },
  { name: 'layerNorm options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.layerNorm(f.x, bad(null)) },
  { name: 'layerNorm bias with a string', code: 'INVALID_DATA', names: 'bias[4]', run: (f) => f.engine.layerNorm(f.x, { normalizedShape: 5, bias: bad([0, 0, 0, 0, 'a']) }) },
  { name: 'rmsNorm options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.rmsNorm(f.x2, bad(null)) },
  { name: 'rmsNorm weight with null', code: 'INVALID_DATA', names: 'weight[5]', run: (f) => f.engine.rmsNorm(f.x2, { normalizedShape: [6], weight: bad([1, 1, 1, 1, 1, null]) }) },
  { name: 'instanceNorm options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.instanceNorm(f.x, bad(null)) },
  { name: 'instanceNorm weight with a boolean', code: 'INVALID_DATA', names: 'weight[1]', run: (f) => f.engine.instanceNorm(f.x, { weight: bad([1, true, 1]) }) },
  { name: 'groupNorm options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.groupNorm(f.x, bad(null)) },
  { name: 'moments options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.moments(f.x, bad(null)) },
  { name: 'explain options null', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.explain('batchNorm', f.x, bad(null)) },
  { name: 'explain layerNorm options a number', code: 'INVALID_ARGUMENT', names: 'options', run: (f) => f.engine.explain('layerNorm', f.x, bad(5)) },

  // --- createEngine ------------------------------------------------------------------------------
  { name: 'createEngine options null', code: 'INVALID_ARGUMENT', names: 'options', run: () => createEngine(bad(null)) },
  { name: 'createEngine powerPreference unknown', code: 'INVALID_ARGUMENT', names: 'powerPreference', run: () => createEngine({ backend: 'cpu', powerPreference: bad('fast') }) },
  { name: 'createEngine device a plain object', code: 'INVALID_ARGUMENT', names: 'device', run: () => createEngine({ device: bad({}) }) },
  { name: 'createEngine device null', code: 'INVALID_ARGUMENT', names: 'device', run: () => createEngine({ backend: 'cpu', device: bad(null) }) },

  // --- preprocess ----------------------------------------------------------------------------------
  { name: 'preprocess without an engine', code: 'INVALID_ARGUMENT', names: 'engine', run: () => preprocess(bad(null), image(2, 2)) },
  { name: 'preprocess flipHorizontal a string', code: 'INVALID_ARGUMENT', names: 'flipHorizontal', run: (f) => preprocess(f.engine, image(2, 2), { flipHorizontal: bad('yes') }) },
  { name: 'planPreprocess of null', code: 'UNSUPPORTED_SOURCE', names: 'images', run: () => planPreprocess(bad(null)) },
  { name: 'preprocess of undefined', code: 'UNSUPPORTED_SOURCE', names: 'images', run: (f) => preprocess(f.engine, bad(undefined)) },
  { name: 'preprocess output over the binding limit', code: 'TENSOR_TOO_LARGE', names: 'preprocess output', run: (f) => preprocess(f.small, image(40, 40)) },

  // --- DatasetStats ----------------------------------------------------------------------------------
  { name: 'DatasetStats without an engine', code: 'INVALID_ARGUMENT', names: 'engine', run: () => new DatasetStats(bad(undefined)) },
  { name: 'DatasetStats transform null', code: 'INVALID_ARGUMENT', names: 'transform', run: (f) => new DatasetStats(f.engine, { transform: bad(null) }) },
  { name: 'DatasetStats transform a string', code: 'INVALID_ARGUMENT', names: 'transform', run: (f) => new DatasetStats(f.engine, { transform: bad('resize') }) },
  { name: 'DatasetStats transform with a bad resize, before any add', code: 'INVALID_ARGUMENT', names: 'resize', run: (f) => new DatasetStats(f.engine, { transform: { resize: -1 } }) },
  { name: 'DatasetStats pixelStats a string', code: 'INVALID_ARGUMENT', names: 'pixelStats', run: (f) => new DatasetStats(f.engine, { pixelStats: bad('no') }) },
  { name: 'DatasetStats.add of null', code: 'UNSUPPORTED_SOURCE', names: 'images', run: (f) => new DatasetStats(f.engine).add(bad(null)) },
  { name: 'DatasetStats.add of images whose statistics exceed the binding limit', code: 'TENSOR_TOO_LARGE', names: 'batch', run: (f) => new DatasetStats(f.small).add(image(8, 8)) },
  { name: 'mergeDatasetStats of null', code: 'INVALID_ARGUMENT', names: 'first partial', run: () => mergeDatasetStats(bad(null), partial()) },
  { name: 'mergeDatasetStats with channel null', code: 'STATS_MISMATCH', names: 'second partial.channel', run: () => mergeDatasetStats(partial(), { ...partial(), channel: bad(null) }) },
  { name: 'mergeDatasetStats with a string mean', code: 'STATS_MISMATCH', names: 'channel.mean', run: () => mergeDatasetStats(partial(), { ...partial(), channel: { ...partial().channel, mean: bad(['0.5']) } }) },
  { name: 'mergeDatasetStats with negative images', code: 'STATS_MISMATCH', names: 'images', run: () => mergeDatasetStats(partial(), { ...partial(), images: -1 }) },
  { name: 'mergeDatasetStats with a count that is not images x H x W', code: 'STATS_MISMATCH', names: 'channel.count', run: () => mergeDatasetStats(partial(), { ...partial(), channel: { ...partial().channel, count: 5 } }) },
  { name: 'finalizeDatasetStats of undefined', code: 'INVALID_ARGUMENT', names: 'partial', run: () => finalizeDatasetStats(bad(undefined)) },
  { name: 'finalizeDatasetStats with pixel a string', code: 'STATS_MISMATCH', names: 'pixel', run: () => finalizeDatasetStats({ ...partial(), pixel: bad('x') }) },

  // --- scalers -----------------------------------------------------------------------------------------
  { name: 'StandardScaler without an engine', code: 'INVALID_ARGUMENT', names: 'engine', run: () => new StandardScaler(bad(null)) },
  { name: 'StandardScaler withMean a string', code: 'INVALID_ARGUMENT', names: 'withMean', run: (f) => new StandardScaler(f.engine, { withMean: bad('no') }) },
  { name: 'MinMaxScaler clip a number', code: 'INVALID_ARGUMENT', names: 'clip', run: (f) => new MinMaxScaler(f.engine, { clip: bad(1) }) },
  { name: 'MinMaxScaler without an engine', code: 'INVALID_ARGUMENT', names: 'engine', run: () => new MinMaxScaler(bad('gpu')) },
  { name: 'fit of null', code: 'INVALID_ARGUMENT', names: 'x', run: (f) => new StandardScaler(f.engine).fit(bad(null)) },
  { name: 'fit of a string', code: 'INVALID_ARGUMENT', names: 'x', run: (f) => new StandardScaler(f.engine).fit(bad('1,2')) },
  { name: 'fit of rows holding a numeric string', code: 'INVALID_DATA', names: 'x[0][0]', run: (f) => new StandardScaler(f.engine).fit(bad([['1', 2], [3, 4]])) },
  { name: 'fit of rows holding null', code: 'INVALID_DATA', names: 'x[1][1]', run: (f) => new MinMaxScaler(f.engine).fit(bad([[1, 2], [3, null]])) },
  { name: 'partialFit of rows holding an object', code: 'INVALID_DATA', names: 'x[0][1]', run: (f) => f.scaler.partialFit(bad([[1, {}]])) },
  { name: 'transform of rows holding a string', code: 'INVALID_DATA', names: 'x[0][0]', run: (f) => f.scaler.transform(bad([['a', 2]])) },
  { name: 'inverseTransform of rows holding a boolean', code: 'INVALID_DATA', names: 'x[0][0]', run: (f) => f.scaler.inverseTransform(bad([[true, 2]])) },
  { name: 'fitTransform of rows holding a string', code: 'INVALID_DATA', names: 'x[1][1]', run: (f) => new StandardScaler(f.engine).fitTransform(bad([[1, 2], [3, '4']])) },
  { name: 'transform of host rows over the binding limit', code: 'TENSOR_TOO_LARGE', names: 'x', run: (f) => f.smallScaler.transform(Array.from({ length: 600 }, (_, i) => [i, -i])) },
  { name: 'fitTransform of host rows over the binding limit', code: 'TENSOR_TOO_LARGE', names: 'x', run: (f) => new MinMaxScaler(f.small).fitTransform(Array.from({ length: 600 }, (_, i) => [i, -i])) },
  { name: 'fit of more columns than the binding limit can reduce', code: 'TENSOR_TOO_LARGE', names: 'x', run: (f) => new StandardScaler(f.small).fit([Array.from({ length: 100 }, (_, i) => i)]) },
];

const makeEngine = (kind: Kind) => (kind === 'webgpu' ? makeGpuEngine() : createEngine({ backend: 'cpu' }));

/** Lower an engine's binding limit (the backend's `maxBindingBytes`, read by every size check). */
function limitBindings(engine: Engine, bytes: number): Engine {
  Object.defineProperty(engine.internalBackend, 'maxBindingBytes', { value: bytes });
  return engine;
}

/** The NormGpuError of a call, thrown or (async entry points) rejected; anything else fails. */
async function failure(run: () => unknown): Promise<{ error: unknown; settled: 'threw' | 'rejected' | 'returned' }> {
  let result: unknown;
  try {
    result = run();
  } catch (error) {
    return { error, settled: 'threw' };
  }
  if (!(result instanceof Promise)) return { error: undefined, settled: 'returned' };
  try {
    await result;
  } catch (error) {
    return { error, settled: 'rejected' };
  }
  return { error: undefined, settled: 'returned' };
}

describe.each(['cpu', 'webgpu'] as const)('%s backend', (kind) => {
  let f: Fixtures;
  const engines: Engine[] = [];

  beforeAll(async () => {
    const engine = await makeEngine(kind);
    const small = limitBindings(await makeEngine(kind), SMALL_LIMIT);
    engines.push(engine, small);
    f = {
      engine,
      small,
      x: engine.tensor(generate('normal', 120, 1), [2, 3, 4, 5]),
      x2: engine.tensor(generate('normal', 24, 2), [4, 6]),
      scaler: await new StandardScaler(engine).fit([[1, 2], [3, 5]]),
      smallScaler: await new MinMaxScaler(small).fit([[1, 2], [3, 5]]),
    };
    if (kind === 'webgpu') {
      f.mapped = engine.device!.createBuffer({ size: 64, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC, mappedAtCreation: true });
      f.pending = engine.device!.createBuffer({ size: 64, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
      void f.pending.mapAsync(BufferUsage.MAP_READ).catch(() => {});
      expect(f.pending.mapState).toBe('pending');
      f.big = small.device!.createBuffer({ size: 2 * SMALL_LIMIT, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC });
    }
  });

  afterAll(() => {
    for (const b of [f?.mapped, f?.pending, f?.big]) b?.destroy();
    for (const e of engines) e.dispose();
  });

  test.each(cases.filter((c) => !c.only || c.only === kind).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const watched = [f.engine, f.small];
    const before = watched.map((e) => e.memory());
    const trackers = kind === 'webgpu' ? watched.map(trackGpuWork) : [];
    let outcome: Awaited<ReturnType<typeof failure>>;
    try {
      outcome = await failure(() => c.run(f));
    } finally {
      for (const t of trackers) t.restore();
    }
    const { error, settled } = outcome;
    expect(error, `expected NormGpuError ${c.code}, the call ${settled}: ${String(error)}`).toBeInstanceOf(NormGpuError);
    expect((error as NormGpuError).code, (error as Error).message).toBe(c.code);
    expect((error as NormGpuError).message, 'the message names the argument').toContain(c.names);
    expect(watched.map((e) => e.memory()), 'engine memory changed by a rejected call').toEqual(before);
    for (const t of trackers) expect(t.log, 'GPU calls made by a rejected call').toEqual([]);
  });

  test('the same calls with good arguments succeed (the fixtures are sound)', async () => {
    const e = f.engine;
    const outs = [
      e.tensor(Float64Array.of(1, 2), [2]),
      e.batchNorm(f.x, { ...evalStats, weight: Float64Array.of(1, 2, 3), bias: new Float32Array(3) }),
      e.layerNorm(f.x, { normalizedShape: 5, bias: [0, 0, 0, 0, 1] }),
      e.rmsNorm(f.x2, { normalizedShape: [6], weight: [1, 1, 1, 1, 1, 2] }),
      e.instanceNorm(f.x, { weight: [1, 2, 1] }),
      e.groupNorm(f.x, { numGroups: 3 }),
      e.moments(f.x, { axes: [0] }).mean,
      preprocess(e, image(2, 2), { flipHorizontal: true }),
      f.small.tensor(new Float32Array(1024), [1024]),
      f.scaler.transform([[1, 2]]),
      f.scaler.inverseTransform([[0, 1]]),
      f.smallScaler.transform(Array.from({ length: 500 }, (_, i) => [i, -i])),
    ];
    if (kind === 'webgpu') outs.push(f.small.fromGPUBuffer(f.small.device!.createBuffer({ size: SMALL_LIMIT, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC }), [4]));
    for (const t of outs) {
      expect((await t.read()).length).toBe(t.size);
      t.dispose();
    }
    expect(Array.from(await e.tensor(Float64Array.of(0.1, NaN, -Infinity), [3]).read())).toEqual([Math.fround(0.1), NaN, -Infinity]);
    expect(e.explain('layerNorm', f.x, { normalizedShape: 5 }).op).toBe('layerNorm');
    await new DatasetStats(f.small).add(image(4, 4));
    expect(finalizeDatasetStats(mergeDatasetStats(partial(), partial())).images).toBe(2);
    await new StandardScaler(f.engine).fitTransform([[1, 2], [3, 4]]);
    await new StandardScaler(f.small).fit([Array.from({ length: 80 }, (_, i) => i)]);
    (await createEngine({ backend: 'cpu', powerPreference: 'low-power' })).dispose();
  });
});
