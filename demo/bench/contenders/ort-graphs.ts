/**
 * The ONNX graphs ONNX Runtime Web runs for each workload, built with bench/onnx-model.ts.
 * ORT's WebGPU EP has kernels for BatchNormalization (inference), InstanceNormalization,
 * LayerNormalization and SimplifiedLayerNormalization (RMSNorm). It has none for
 * GroupNormalization or BatchNormalization in training mode, so those are the smallest
 * all-GPU compositions of ops it does have (see `note`). Channels-last inputs go through
 * Transpose nodes to the ops that are defined on NCHW; ORT's layout transformer removes them
 * where its preferred layout is NHWC.
 */
import { encodeModel, type OnnxGraph, type OnnxInitializer, type OnnxNode } from '../../../bench/onnx-model';
import { EPS, GROUPS, MOMENTUM, type Workload, type WorkloadData } from '../workloads';

export interface OrtGraph {
  model: Uint8Array;
  outputs: string[];
  note: string;
}

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

export function buildGraph(w: Workload, data: WorkloadData): OrtGraph {
  const nodes: OnnxNode[] = [];
  const inits: OnnxInitializer[] = [];
  const init = (name: string, dims: readonly number[], values: Float32Array | readonly number[]) => {
    inits.push({ name, dims, data: values instanceof Float32Array ? values : Float32Array.from(values) });
    return name;
  };
  const int64 = (name: string, values: readonly number[]) => {
    inits.push({ name, dims: [values.length], data: BigInt64Array.from(values, (v) => BigInt(v)) });
    return name;
  };
  const node = (op: string, inputs: string[], output: string, attributes?: OnnxNode['attributes']) => {
    nodes.push({ op, inputs, outputs: [output], attributes });
    return output;
  };
  const eps = { float: EPS };
  const [n, c, h, wd] = w.dims;
  const nhwc = w.layout === 'NHWC';
  const outputs = ['y'];
  let note: string;

  // Wrap an NCHW-only op for channels-last storage: x -> Transpose -> f -> Transpose -> y.
  const viaNchw = (f: (x: string) => string, out: string) => {
    if (!nhwc) return f('x');
    const t = node('Transpose', ['x'], 'x_nchw', { perm: TO_NCHW });
    return node('Transpose', [f(t)], out, { perm: TO_NHWC });
  };

  switch (w.op) {
    case 'bnEval': {
      const p = [init('scale', [c], data.weight), init('B', [c], data.bias!), init('mean', [c], data.runningMean!), init('var', [c], data.runningVar!)];
      viaNchw((x) => node('BatchNormalization', [x, ...p], nhwc ? 'y_nchw' : 'y', { epsilon: eps }), 'y');
      note = nhwc ? 'Transpose → BatchNormalization → Transpose' : 'BatchNormalization';
      break;
    }
    case 'instanceNorm': {
      const p = [init('scale', [c], data.weight), init('B', [c], data.bias!)];
      viaNchw((x) => node('InstanceNormalization', [x, ...p], nhwc ? 'y_nchw' : 'y', { epsilon: eps }), 'y');
      note = nhwc ? 'Transpose → InstanceNormalization → Transpose' : 'InstanceNormalization';
      break;
    }
    case 'layerNorm': {
      const shape = w.storage.slice(1);
      node('LayerNormalization', ['x', init('scale', shape, data.weight), init('B', shape, data.bias!)], 'y', { axis: 1, epsilon: eps });
      note = 'LayerNormalization';
      break;
    }
    case 'rmsNorm': {
      node('SimplifiedLayerNormalization', ['x', init('scale', w.storage.slice(1), data.weight)], 'y', { axis: 1, epsilon: eps });
      note = 'SimplifiedLayerNormalization';
      break;
    }
    case 'groupNorm': {
      // No GroupNormalization kernel: LayerNormalization over each (sample, group) row of a
      // [N, G, C/G*H*W] view, then the per-channel affine.
      const m = (c / GROUPS) * h * wd;
      const ones = init('ones', [m], new Float32Array(m).fill(1));
      const zeros = init('zeros', [m], new Float32Array(m));
      const wShape = nhwc ? [c] : [c, 1, 1];
      const gw = init('gamma', wShape, data.weight);
      const gb = init('beta', wShape, data.bias!);
      const grouped = (x: string) => {
        const r = node('Reshape', [x, int64('groups_shape', [n, GROUPS, m])], 'x_groups');
        const ln = node('LayerNormalization', [r, ones, zeros], 'ln', { axis: 2, epsilon: eps });
        return node('Reshape', [ln, int64('nchw_shape', [n, c, h, wd])], nhwc ? 'norm_nchw' : 'norm');
      };
      const normalized = viaNchw(grouped, 'norm');
      node('Add', [node('Mul', [normalized, gw], 'scaled'), gb], 'y');
      note = `${nhwc ? 'Transpose → ' : ''}Reshape → LayerNormalization → Reshape${nhwc ? ' → Transpose' : ''} → Mul → Add (no GroupNormalization kernel)`;
      break;
    }
    case 'bnTrain': {
      // No training-mode BatchNormalization kernel: batch statistics by reductions, the
      // normalize as elementwise ops, and PyTorch's running-statistics update.
      const axes = nhwc ? [0, 1, 2] : [0, 2, 3];
      const statShape = nhwc ? [1, 1, 1, c] : [1, c, 1, 1];
      const count = w.numel / c;
      const k = (name: string, v: number) => init(name, [], [v]);
      const mean = node('ReduceMean', ['x'], 'mean', { axes, keepdims: 1 });
      const d = node('Sub', ['x', mean], 'd');
      const ss = node('ReduceSumSquare', [d], 'ss', { axes, keepdims: 1 });
      const variance = node('Mul', [ss, k('inv_n', 1 / count)], 'var');
      const std = node('Sqrt', [node('Add', [variance, k('eps', EPS)], 'var_eps')], 'std');
      const scale = node('Div', [init('gamma', statShape, data.weight), std], 'scale');
      node('Add', [node('Mul', [d, scale], 'dy'), init('beta', statShape, data.bias!)], 'y');
      const keep = k('keep', 1 - MOMENTUM);
      node('Add', [node('Mul', [init('rm', statShape, data.runningMean!), keep], 'rm_keep'), node('Mul', [mean, k('m', MOMENTUM)], 'rm_new')], 'running_mean');
      node('Add', [node('Mul', [init('rv', statShape, data.runningVar!), keep], 'rv_keep'), node('Mul', [ss, k('m_unbiased', MOMENTUM / (count - 1))], 'rv_new')], 'running_var');
      outputs.push('running_mean', 'running_var');
      note = 'ReduceMean → Sub → ReduceSumSquare → Mul/Add/Sqrt/Div → Mul → Add, + running-stat update (no training-mode BatchNormalization kernel)';
      break;
    }
  }

  const statDims = w.layout === 'NHWC' ? [1, 1, 1, c] : [1, c, 1, 1];
  const graph: OnnxGraph = {
    name: w.id,
    nodes,
    initializers: inits,
    inputs: [{ name: 'x', dims: w.storage }],
    outputs: outputs.map((name) => ({ name, dims: name === 'y' ? w.storage : statDims })),
    opsets: { '': 17 },
  };
  return { model: encodeModel(graph), outputs, note };
}
