/**
 * Golden ops of image preprocessing and the feature scalers for the accuracy runner:
 * `image_normalize` (uint8 HWC image -> float32 CHW through `preprocess`) and
 * `standard_scaler` (scikit-learn StandardScaler statistics and transform, plus MinMaxScaler
 * with feature_range (-1, 1)). Like the runner, no Node or DOM APIs.
 */
import { MinMaxScaler, preprocess, StandardScaler, type Engine, type Tensor } from '../index';

/** The golden ops this module runs. */
export const PREPROCESSING_OPS: ReadonlySet<string> = new Set(['image_normalize', 'standard_scaler']);

interface Case {
  id: string;
  op: string;
  shape: number[];
  params: Record<string, unknown>;
  [file: string]: unknown;
}

/** A named pair of values to compare, as the runner's comparisons. */
export interface OpComparison {
  name: string;
  actual: Float32Array;
  expected: Float32Array;
}

function param<T>(p: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, fallback?: T): T {
  const v = p[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!ok(v)) throw new Error(`params.${key} is missing or malformed`);
  return v as T;
}
const numbers = (v: unknown) => Array.isArray(v) && v.every((n) => typeof n === 'number');

/** Run one case of an op in PREPROCESSING_OPS and return what to compare. */
export async function runPreprocessingOp(
  engine: Engine,
  c: Case,
  loadFile: (name: string) => Promise<ArrayBuffer>,
  load: (key: string) => Promise<Float32Array>,
  track: <T extends Tensor>(t: T) => T,
): Promise<OpComparison[]> {
  const p = c.params;
  if (c.op === 'image_normalize') {
    if (c.layout !== undefined && c.layout !== 'HWC->CHW') throw new Error(`unknown layout '${c.layout}'`);
    const [height, width, channels] = c.shape;
    if (typeof c.input !== 'string') throw new Error("case has no 'input' file");
    const data = new Uint8Array(await loadFile(c.input));
    const order = param<string>(p, 'channel_order', (v) => typeof v === 'string', 'RGB').toLowerCase();
    if (order !== 'rgb' && order !== 'bgr' && order !== 'grayscale') throw new Error(`unknown channel_order '${order}'`);
    const y = track(preprocess(engine, { data, width, height, channels: channels as 1 | 3 | 4 }, {
      mean: param<number[]>(p, 'mean', numbers, [0]),
      std: param<number[]>(p, 'std', numbers, [1]),
      scale: param<number>(p, 'scale', (v) => typeof v === 'number', 1 / 255),
      channelOrder: order,
    }));
    return [{ name: 'output', actual: await y.read(), expected: await load('output') }];
  }
  if (c.op === 'standard_scaler') {
    const x = track(engine.tensor(await load('input'), c.shape));
    const standard = new StandardScaler(engine, {
      withMean: param<boolean>(p, 'with_mean', (v) => typeof v === 'boolean', true),
      withStd: param<boolean>(p, 'with_std', (v) => typeof v === 'boolean', true),
    });
    const z = track(await standard.fitTransform(x));
    const out: OpComparison[] = [{ name: 'output', actual: await z.read(), expected: await load('output') }];
    if (typeof c.mean === 'string' && standard.mean) out.push({ name: 'mean', actual: Float32Array.from(standard.mean), expected: await load('mean') });
    if (typeof c.scale === 'string' && standard.scale) out.push({ name: 'scale', actual: Float32Array.from(standard.scale), expected: await load('scale') });
    if (typeof c.minmax_output === 'string') {
      const range = param<[number, number]>(p, 'feature_range', (v) => numbers(v) && (v as number[]).length === 2, [-1, 1]);
      const m = track(await new MinMaxScaler(engine, { featureRange: range }).fitTransform(x));
      out.push({ name: 'minmax_output', actual: await m.read(), expected: await load('minmax_output') });
    }
    return out;
  }
  throw new Error(`no runner for op '${c.op}'`);
}
