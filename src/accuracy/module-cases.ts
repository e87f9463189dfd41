/**
 * The `module` kind of the golden-model suite: a `BatchNorm2d` (PyTorch's `nn.BatchNorm2d(C,
 * eps, momentum)`, momentum possibly null) fed the case's training batches in order, then its
 * running statistics and `num_batches_tracked`, then eval mode on one more input. Like the
 * runner, it uses no Node or DOM APIs.
 */
import { BatchNorm2d, type Engine, type Tensor } from '../index';
import type { OpComparison } from './preprocessing-ops';

/** The golden ops this file runs. */
export const MODULE_OPS: ReadonlySet<string> = new Set(['batch_norm_module']);

/** A module case as the manifest writes it (see its `kinds.module`). */
interface ModuleCase {
  id: string;
  op: string;
  layout?: string;
  shape: number[];
  params: { eps?: number; momentum?: number | null };
  weight?: string;
  bias?: string;
  train: { input: string; output: string }[];
  running_mean_out: string;
  running_var_out: string;
  num_batches_tracked: number;
  eval: { input: string; output: string };
}

/**
 * Run one `module` case on `engine`: every training output, the running statistics and
 * counter, and the eval output, as comparisons. `load` reads a file of the case by key, dotted
 * for nested entries (`train.0.input`); `track` takes the tensors the caller disposes.
 */
export async function runModuleCase(
  engine: Engine,
  golden: { id: string; op: string; layout?: string; shape: number[] },
  load: (key: string) => Promise<Float32Array>,
  track: <T extends Tensor>(t: T) => T,
): Promise<OpComparison[]> {
  const c = golden as ModuleCase;
  if (c.op !== 'batch_norm_module') throw new Error(`no module runner for op '${c.op}'`);
  if (c.layout !== 'NCHW' && c.layout !== 'NHWC') throw new Error(`unknown module layout '${c.layout}'`);
  const layout = c.layout === 'NHWC' ? 'channels-last' : 'channels-first';
  const channels = c.shape[layout === 'channels-last' ? 3 : 1];
  const bn = new BatchNorm2d(engine, channels, { eps: c.params.eps, momentum: c.params.momentum });
  try {
    const affine: Record<string, Float32Array> = {};
    if (c.weight) affine.weight = await load('weight');
    if (c.bias) affine.bias = await load('bias');
    bn.loadStateDict(affine, { strict: false });
    const out: OpComparison[] = [];
    const step = async (key: string, name: string) => {
      const x = track(engine.tensor(await load(`${key}.input`), c.shape, { layout }));
      out.push({ name, actual: await track(bn.forward(x)).read(), expected: await load(`${key}.output`) });
    };
    for (let k = 0; k < c.train.length; k++) await step(`train.${k}`, `train[${k}].output`);
    out.push(
      { name: 'running_mean', actual: await bn.runningMean!.read(), expected: await load('running_mean_out') },
      { name: 'running_var', actual: await bn.runningVar!.read(), expected: await load('running_var_out') },
      { name: 'num_batches_tracked', actual: Float32Array.of(bn.numBatchesTracked), expected: Float32Array.of(c.num_batches_tracked) },
    );
    bn.eval();
    await step('eval', 'eval.output');
    return out;
  } finally {
    bn.dispose();
  }
}
