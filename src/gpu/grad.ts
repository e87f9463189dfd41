/**
 * Backward passes on the GPU: records the stages src/plan/grad.ts plans (saved_stats,
 * reduce_grad, merge_grad, apply_grad, or grad_serial on software adapters) into the backend's
 * open stream, one op each.
 */
import type { GradOperands, GradStorages, NormOperands, Storage } from '../backend';
import {
  GRAD_WG, gradStages, MERGE_WG, momentsOf, planGrad, savedStatsStage, type ColumnsPass, type GradPlan, type GradSpec, type GradStage, type RowsPass,
} from '../plan/grad';
import { linearGrid } from '../plan/gpu-plan';
import type { NormSpec } from '../plan/spec';
import { elementCount, groupCount } from '../plan/view';
import type { WebGpuBackend } from './backend';
import { BufferUsage, STORAGE_USAGE } from '../webgpu-flags';
import { kernels } from './kernels';
import { preparePipeline } from './pipelines';
import { pipelineCollector, type Recorder } from './recorder';

const MODE = { batch: 0, running: 1, rms: 2, moments: 0 } as const;

function bufferOf(s: Storage): GPUBuffer {
  if (s.kind !== 'gpu') throw new Error('internal: CPU storage given to the WebGPU backend');
  return s.buffer;
}

/** saved_stats.wgsl after the moments of x (or on the running statistics of BatchNorm inference). */
export function savedStatsGpu(backend: WebGpuBackend, spec: NormSpec, ops: NormOperands): { mean: Storage; rstd: Storage } {
  const groups = groupCount(spec.view);
  const moments = spec.mode === 'running' ? null : backend.moments(momentsOf(spec), ops.x);
  const [m, v] = moments ? [moments.mean, moments.variance] : [ops.runningMean!, ops.runningVar!];
  const { value, fault } = backend.record(`normgpu:${spec.op}:saved-stats`, [m, v], (rec) => {
    const mean = rec.output(groups * 4, STORAGE_USAGE, `normgpu:${spec.op}:saved-mean`);
    const rstd = rec.output(groups * 4, STORAGE_USAGE, `normgpu:${spec.op}:saved-rstd`);
    rec.dispatch(kernels.savedStats, { WG: MERGE_WG, MODE: MODE[spec.mode] }, [
      rec.uniform('saved-params', [groups], [spec.eps]), bufferOf(m), bufferOf(v), mean, rstd,
    ], linearGrid(groups, MERGE_WG, backend.traits.maxWorkgroupsPerDim));
    return { mean, rstd };
  });
  if (moments) {
    backend.releaseStorage(moments.mean);
    backend.releaseStorage(moments.variance);
  }
  return { mean: { kind: 'gpu', buffer: value.mean, owned: true, fault }, rstd: { kind: 'gpu', buffer: value.rstd, owned: true, fault } };
}

/** The buffers of one backward: its operands (null: absent) and the outputs the mask asks for. */
interface GradBuffers {
  dy: GPUBuffer;
  x: GPUBuffer;
  weight: GPUBuffer | null;
  mean: GPUBuffer | null;
  rstd: GPUBuffer;
}

/**
 * Record the stages of `plan` into `rec` (the backend's stream, or a pipeline collector for
 * `prepareBackward`, so the list of pipelines cannot drift from what runs).
 */
function recordBackward(rec: Recorder, spec: GradSpec, plan: GradPlan, b: GradBuffers): { dx?: GPUBuffer; dweight?: GPUBuffer; dbias?: GPUBuffer } {
  const n = spec.norm;
  const groups = groupCount(n.view);
  const mode = MODE[n.mode];
  const spare = (label: string) => rec.temp(16, BufferUsage.STORAGE, `unused-${label}`);
  const unused = spare('read');
  const mean = b.mean ?? unused;
  const weight = b.weight ?? unused;
  const o = spec.outputs;
  const table = rec.temp(groups * 32, BufferUsage.STORAGE, 'grad-table');
  const out: { dx?: GPUBuffer; dweight?: GPUBuffer; dbias?: GPUBuffer } = {};
  if (o.input) out.dx = rec.output(elementCount(n.view) * 4, STORAGE_USAGE, `normgpu:${n.op}:dx`);
  const stage1 = (pass: RowsPass | ColumnsPass, tableIn: GPUBuffer) => {
    const cells = rec.temp(pass.cells * 16, BufferUsage.STORAGE, 'grad-cells');
    rec.dispatch(kernels.reduceGrad(pass.entry), {
      WG: GRAD_WG, RMS: n.mode === 'rms',
      WEIGHTED: pass.entry === 'main_rows' && pass.weighted && !!b.weight,
      ROW_STATS: pass.entry !== 'main_rows' && pass.rowStats,
    }, [rec.uniform('reduce-grad-params', pass.u32), b.dy, b.x, mean, weight, tableIn, cells], pass.workgroups);
    return cells;
  };

  const params = () => {
    out.dweight = o.weight ? rec.output(spec.params * 4, STORAGE_USAGE, `normgpu:${n.op}:dweight`) : undefined;
    out.dbias = o.bias ? rec.output(spec.params * 4, STORAGE_USAGE, `normgpu:${n.op}:dbias`) : undefined;
  };
  let groupCells = unused;
  if (plan.fused) {
    const f = plan.fused;
    // Bindings 6 and 7: main_rows' table and cells; main_spans/main_lanes' dweight and dbias
    // (DIRECT) or cells.
    if (f.direct) params();
    groupCells = f.cells ? rec.temp(f.cells * 16, BufferUsage.STORAGE, 'grad-cells') : spare('cells');
    const rows = f.entry.startsWith('main_rows');
    rec.dispatch(kernels.gradSerial(f.entry), {
      WG: f.wg, MODE: mode, HAS_WEIGHT: !!b.weight, WANT_DX: o.input, WANT_WEIGHT: o.weight, WANT_BIAS: o.bias, DIRECT: f.direct,
    }, [
      rec.uniform('grad-serial-params', f.u32), b.dy, b.x, mean, b.rstd, weight,
      rows ? table : out.dweight ?? spare('dweight'), f.direct ? out.dbias ?? spare('dbias') : groupCells, out.dx ?? spare('dx'),
    ], f.workgroups);
  }
  if (plan.groups) {
    if (plan.groupCells) groupCells = stage1(plan.groupCells, unused);
    // BN/IN/GN cells hold unweighted sums: the group merge weights them per channel.
    rec.dispatch(kernels.mergeGrad('main_groups'), { WG: MERGE_WG, MODE: mode, HAS_WEIGHT: n.rows.kind !== 'features' && !!b.weight }, [
      rec.uniform('merge-grad-params', plan.groups.u32.slice(0, 5), [plan.groups.u32[5]]),
      groupCells, mean, b.rstd, weight, table, spare('dweight'), spare('dbias'),
    ], plan.groups.workgroups);
  }
  if (plan.params) {
    const cells = plan.paramCells ? stage1(plan.paramCells, table) : groupCells;
    params();
    // Cells of LayerNorm/RMSNorm columns and of grad_serial hold Σ dy * x̂ already.
    rec.dispatch(kernels.mergeGrad('main_params'), {
      WG: MERGE_WG, SCALED: !!plan.paramCells || !!plan.fused, WANT_WEIGHT: o.weight, WANT_BIAS: o.bias,
    }, [
      rec.uniform('merge-grad-params', plan.params.u32.slice(0, 5), [plan.params.u32[5]]),
      cells, unused, unused, unused, table, out.dweight ?? spare('dweight'), out.dbias ?? spare('dbias'),
    ], plan.params.workgroups);
  }
  if (plan.apply) {
    const l = n.rows;
    rec.dispatch(kernels.applyGrad, {
      WG: GRAD_WG, MODE: mode, HAS_WEIGHT: !!b.weight, PARAM_PER_ROW: l.kind === 'planes', COLUMN_GROUPS: l.columnGroups,
    }, [rec.uniform('apply-grad-params', plan.apply.u32), table, weight, b.dy, b.x, out.dx!], plan.apply.workgroups);
  }
  return out;
}

/** The gradients `spec.outputs` asks for, in one recorded op. */
export function backwardGpu(backend: WebGpuBackend, spec: GradSpec, ops: GradOperands): GradStorages {
  const n = spec.norm;
  const plan = planGrad(spec, backend.traits);
  const { value, fault } = backend.record(`normgpu:${n.op}:backward`, [ops.dy, ops.x, ops.weight, ops.mean, ops.rstd], (rec) => recordBackward(rec, spec, plan, {
    dy: bufferOf(ops.dy), x: bufferOf(ops.x), rstd: bufferOf(ops.rstd),
    mean: ops.mean ? bufferOf(ops.mean) : null, weight: ops.weight ? bufferOf(ops.weight) : null,
  }));
  const wrap = (b: GPUBuffer | undefined): Storage | undefined => (b ? { kind: 'gpu', buffer: b, owned: true, fault } : undefined);
  return { dx: wrap(value.dx), dweight: wrap(value.dweight), dbias: wrap(value.dbias) };
}

/** The stages of a backward of `spec` (without `saved` statistics: those computing them from x first). */
export function describeBackwardGpu(backend: WebGpuBackend, spec: GradSpec, saved: boolean): GradStage[] {
  const pre: GradStage[] = [];
  if (!saved) {
    if (spec.norm.mode !== 'running') pre.push(...backend.describe(momentsOf(spec.norm), { weight: false, bias: false }));
    pre.push(savedStatsStage(spec, linearGrid(groupCount(spec.norm.view), MERGE_WG, backend.traits.maxWorkgroupsPerDim)));
  }
  return [...pre, ...gradStages(spec, planGrad(spec, backend.traits))];
}

/**
 * Compile, without blocking, the pipelines of a backward of `spec` and of the statistics
 * stages (moments, saved_stats) that normForward and a backward without saved statistics use.
 */
export async function prepareBackwardGpu(backend: WebGpuBackend, spec: GradSpec, dummy: GPUBuffer): Promise<void> {
  const wanted = pipelineCollector(dummy);
  const forward = spec.norm.mode === 'running' ? [] : [backend.prepare(momentsOf(spec.norm), { weight: false, bias: false })];
  wanted.recorder.dispatch(kernels.savedStats, { WG: MERGE_WG, MODE: MODE[spec.norm.mode] }, [], []);
  recordBackward(wanted.recorder, spec, planGrad(spec, backend.traits), {
    dy: dummy, x: dummy, rstd: dummy, mean: spec.norm.mode === 'rms' ? null : dummy, weight: spec.hasWeight ? dummy : null,
  });
  await Promise.all([...forward, ...wanted.kernels.map(({ def, overrides }) => preparePipeline(backend.device, def, overrides))]);
}
