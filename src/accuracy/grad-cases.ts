/**
 * Backward golden cases for the accuracy runner (`test/golden-grad`, PyTorch autograd in
 * float64 from float32 inputs): a case names `grad_output` (dy) and the references
 * `grad_input`, `grad_weight`, `grad_bias` (gradients of sum(output * grad_output)) besides the
 * forward's `output`. Each case runs `normForward` and `normBackward` from its saved statistics,
 * and `normBackward` again from x alone; every result is compared. Tolerance: 1e-5, 1e-4 for
 * `dist: 'offset'` (in the case or its params). Like the runner, no Node or DOM APIs.
 */
import type { Engine, Tensor } from '../index';
import type { NormOp } from '../plan/grad';
import { LAYOUTS, channels, normalizedShape, optionalNumber, type GoldenCase } from './runner';
import type { OpComparison } from './preprocessing-ops';

/** A backward case: one with a `grad_output` file. */
export function isGradCase(c: GoldenCase): boolean {
  return typeof c.grad_output === 'string';
}

/** 1e-4 for `offset` inputs (1e3 + N(0, 1)), 1e-5 otherwise: the manifest's tolerances. */
export function gradTolerance(c: GoldenCase): number {
  return (c.dist ?? c.params.dist) === 'offset' ? 1e-4 : 1e-5;
}

const OPS: Readonly<Record<string, NormOp>> = {
  batch_norm_train: 'batchNorm', batch_norm_eval: 'batchNorm', layer_norm: 'layerNorm', rms_norm: 'rmsNorm',
  instance_norm: 'instanceNorm', group_norm: 'groupNorm',
};

/** Run one backward case and return what to compare. */
export async function runGradCase(
  engine: Engine,
  c: GoldenCase,
  load: (key: string) => Promise<Float32Array>,
  track: <T extends Tensor>(t: T) => T,
): Promise<OpComparison[]> {
  const op = OPS[c.op];
  if (!op) throw new Error(`no backward runner for op '${c.op}'`);
  const layout = c.layout === undefined ? undefined : LAYOUTS[c.layout];
  if (layout === undefined) throw new Error(`unknown layout '${c.layout}'`);
  const x = track(engine.tensor(await load('input'), c.shape, { layout }));
  const dy = track(engine.tensor(await load('grad_output'), c.shape, { layout }));
  const p = c.params;
  const options: Record<string, unknown> = { eps: optionalNumber(p, 'eps') };
  if (typeof c.weight === 'string') options.weight = await load('weight');
  if (typeof c.bias === 'string') options.bias = await load('bias');
  if (op === 'layerNorm' || op === 'rmsNorm') options.normalizedShape = normalizedShape(p);
  if (op === 'groupNorm') options.numGroups = optionalNumber(p, 'num_groups');
  if (c.op === 'batch_norm_train') options.training = true;
  if (c.op === 'batch_norm_eval') {
    options.runningMean = await load('running_mean');
    options.runningVar = await load('running_var');
  }
  if (c.op === 'batch_norm_train' && typeof c.running_mean === 'string') {
    // Training updates them: tensors, as the forward requires.
    options.runningMean = track(engine.tensor(await load('running_mean'), [channels(c)]));
    options.runningVar = track(engine.tensor(await load('running_var'), [channels(c)]));
  }
  const f = engine.normForward(op, x, options as never);
  track(f.y);
  track(f.saved.rstd);
  if (f.saved.mean) track(f.saved.mean);
  const fromSaved = engine.normBackward(op, dy, x, { ...options, saved: f.saved } as never);
  const fromX = engine.normBackward(op, dy, x, options as never);
  const out: OpComparison[] = [];
  if (typeof c.output === 'string') out.push({ name: 'output', actual: await f.y.read(), expected: await load('output') });
  for (const [label, g] of [['saved', fromSaved], ['from x', fromX]] as const) {
    for (const [key, t] of [['grad_input', g.dx], ['grad_weight', g.dweight], ['grad_bias', g.dbias]] as const) {
      if (t) track(t);
      if (typeof c[key] !== 'string') continue;
      if (!t) throw new Error(`${key} (${label}) was not computed`);
      out.push({ name: `${key} (${label})`, actual: await t.read(), expected: await load(key) });
    }
  }
  return out;
}
