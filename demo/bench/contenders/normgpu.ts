/**
 * normgpu itself, on its WebGPU backend and on its float64 CPU backend (which is also the
 * reference every contender's output is checked against).
 */
import { createEngine, type Engine, type Tensor } from '../../../src/index';
import { EPS, GROUPS, MOMENTUM, type Workload, type WorkloadData } from '../workloads';
import type { Contender, ContenderFactory, Prepared } from './types';

const LAYOUT = { NCHW: 'channels-first', NHWC: 'channels-last', rows: 'channels-first' } as const;

/** Run workload `w` once on `engine`: the op call the benchmark times. */
export function callOp(engine: Engine, w: Workload, t: {
  x: Tensor; weight?: Tensor; bias?: Tensor; runningMean?: Tensor; runningVar?: Tensor;
}): Tensor {
  const affine = { weight: t.weight, bias: t.bias, eps: EPS };
  switch (w.op) {
    case 'bnTrain':
      return engine.batchNorm(t.x, { ...affine, training: true, momentum: MOMENTUM, runningMean: t.runningMean, runningVar: t.runningVar });
    case 'bnEval':
      return engine.batchNorm(t.x, { ...affine, training: false, runningMean: t.runningMean, runningVar: t.runningVar });
    case 'layerNorm':
      return engine.layerNorm(t.x, { ...affine, normalizedShape: w.storage.slice(1) });
    case 'rmsNorm':
      return engine.rmsNorm(t.x, { weight: t.weight, eps: EPS, normalizedShape: w.storage.slice(1) });
    case 'instanceNorm':
      return engine.instanceNorm(t.x, affine);
    case 'groupNorm':
      return engine.groupNorm(t.x, { ...affine, numGroups: GROUPS });
  }
}

/** What normgpu runs for workload `w` on inputs `t`: its plan's kernels, e.g. `stats:rows → apply:rows`. */
export function planNote(engine: Engine, w: Workload, t: ReturnType<typeof uploadData>): string {
  const options = w.op === 'groupNorm' ? { numGroups: GROUPS }
    : w.op === 'layerNorm' || w.op === 'rmsNorm' ? { normalizedShape: w.storage.slice(1) }
    : w.op === 'bnTrain' ? { training: true } : w.op === 'bnEval' ? { runningMean: t.runningMean, runningVar: t.runningVar } : {};
  const plan = engine.explain(w.op === 'bnTrain' || w.op === 'bnEval' ? 'batchNorm' : w.op, t.x, options);
  return plan.kernels.map((k) => `${k.stage}:${k.variant}`).join(' → ');
}

/** Upload a workload's data as tensors of `engine`. */
export function uploadData(engine: Engine, w: Workload, data: WorkloadData) {
  const param = (a?: Float32Array) => (a ? engine.tensor(a, [a.length]) : undefined);
  return {
    x: engine.tensor(data.x, w.storage, { layout: LAYOUT[w.layout] }),
    weight: param(data.weight),
    bias: param(data.bias),
    runningMean: param(data.runningMean),
    runningVar: param(data.runningVar),
  };
}

async function normgpuContender(backend: 'webgpu' | 'cpu'): Promise<Contender> {
  const engine = await createEngine({ backend });
  const info: Record<string, string> = { backend: engine.backend };
  const a = engine.adapterInfo;
  if (a) info.adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ');
  return {
    id: backend === 'webgpu' ? 'normgpu' : 'normgpu-cpu',
    label: backend === 'webgpu' ? 'normgpu' : 'normgpu CPU',
    device: engine.device,
    info,
    async prepare(w, data): Promise<Prepared> {
      const t = uploadData(engine, w, data);
      let y: Tensor | undefined;
      return {
        run() {
          y?.dispose();
          y = callOp(engine, w, t);
        },
        // The op waits in normgpu's batch until the end of the task; submit it now.
        flush: () => engine.flush(),
        read: () => y!.read(),
        note: backend === 'webgpu' ? planNote(engine, w, t) : undefined,
        release() {
          y?.dispose();
          for (const v of Object.values(t)) v?.dispose();
        },
      };
    },
    dispose: () => engine.dispose(),
  };
}

export const normgpuWebGpu: ContenderFactory = { id: 'normgpu', label: 'normgpu', create: () => normgpuContender('webgpu') };
export const normgpuCpu: ContenderFactory = { id: 'normgpu-cpu', label: 'normgpu CPU', create: () => normgpuContender('cpu') };
