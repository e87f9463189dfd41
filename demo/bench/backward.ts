/**
 * Backward passes (issue 10): normgpu's `normBackward` (dx, dweight, dbias from the forward's
 * saved statistics) timed next to TF.js (`tf.grads` of its moments/batchNorm graph, the way a
 * TF.js model trains) and the vec4 copy of x (the bandwidth ceiling: a backward reads x and dy
 * and writes dx, so the goal is at most 2.5x the copy). `--filter backward` selects them. Each
 * GPU side is timed on its own device with timestamps (GpuTimer); dx is checked against the CPU
 * backend's float64 reference.
 */
import { createEngine, Tensor, type Engine } from '../../src/index';
import { measureCeilings } from './ceilings';
import { GpuTimer, median } from './timer';
import { EPS, GROUPS, makeData, makeWorkload, type OpKind, type Workload, type WorkloadData } from './workloads';

export interface BackwardCase {
  /** `backward/<workload id>`. */
  id: string;
  workload: Workload;
}

export interface BackwardResult {
  id: string;
  workload: Workload;
  /** Median GPU ms of normgpu's backward (dx, dweight, dbias). */
  normgpuMs: number | null;
  /** Median GPU ms of TF.js's tf.grads of the same three. */
  tfjsMs: number | null;
  /** Median ms of the vec4 copy of x. */
  copyMs: number | null;
  /** normgpuMs / copyMs (goal <= 2.5). */
  vsCopy: number | null;
  /** tfjsMs / normgpuMs (goal >= 3). */
  speedupVsTfjs: number | null;
  /** Max |dx - reference| of each side. */
  maxError: { normgpu: number | null; tfjs: number | null };
  kernels?: string;
  error?: string;
}

/** TF.js's side, given by the browser runner (Node has no TF.js WebGPU backend). */
export interface TfjsGrad {
  device: GPUDevice;
  /** Prepare tf.grads of the workload's forward for the upstream gradient `dy`. */
  prepare(w: Workload, data: WorkloadData, dy: Float32Array): { run(): void; flush(): void; dx(): Promise<Float32Array>; release(): void };
}

const OPS: readonly OpKind[] = ['bnTrain', 'groupNorm', 'instanceNorm'];

/** The backward cases of a scope: BN train, GroupNorm, InstanceNorm in both layouts, LayerNorm and RMSNorm rows. */
export function backwardCases(scope: 'quick' | 'default' | 'full', iterations?: number): BackwardCase[] {
  const conv = scope === 'quick' ? [2, 64, 16, 16] : [8, 64, 56, 56];
  const rows = scope === 'quick' ? [256, 768] : [2048, 768];
  const out: Workload[] = [];
  for (const layout of ['NCHW', 'NHWC'] as const) for (const op of OPS) out.push(makeWorkload(op, layout, conv, 'default', iterations));
  for (const op of ['layerNorm', 'rmsNorm'] as const) out.push(makeWorkload(op, 'rows', rows, 'default', iterations));
  return out.map((workload) => ({ id: `backward/${workload.id}`, workload }));
}

type NormOp = 'batchNorm' | 'groupNorm' | 'instanceNorm' | 'layerNorm' | 'rmsNorm';

function callOf(w: Workload, data: WorkloadData): { op: NormOp; options: Record<string, unknown> } {
  const affine = { weight: data.weight, ...(data.bias ? { bias: data.bias } : {}), eps: EPS };
  switch (w.op) {
    case 'bnTrain': case 'bnEval': return { op: 'batchNorm', options: { ...affine, training: true } };
    case 'groupNorm': return { op: 'groupNorm', options: { ...affine, numGroups: GROUPS } };
    case 'instanceNorm': return { op: 'instanceNorm', options: affine };
    case 'layerNorm': return { op: 'layerNorm', options: { ...affine, normalizedShape: [w.storage.at(-1)!] } };
    case 'rmsNorm': return { op: 'rmsNorm', options: { ...affine, normalizedShape: [w.storage.at(-1)!] } };
  }
}

/** The upstream gradient every side gets. */
function upstream(w: Workload): Float32Array {
  const r = makeData(w, 99).x;
  return r.map((v, i) => Math.sin(v + i));
}

/** normBackward prepared on `engine`: run() issues one backward from saved statistics. */
function prepareNormgpu(engine: Engine, w: Workload, data: WorkloadData, dy0: Float32Array) {
  const layout = w.layout === 'NHWC' ? 'channels-last' : 'channels-first';
  const { op, options } = callOf(w, data);
  const params = Object.fromEntries(Object.entries(options).map(([k, v]) => [k, v instanceof Float32Array ? engine.tensor(v, [v.length]) : v]));
  const x = engine.tensor(data.x, [...w.storage], { layout });
  const dy = engine.tensor(dy0, [...w.storage], { layout });
  const f = engine.normForward(op, x, params as never);
  let out: Tensor[] = [];
  const mask = { input: true, weight: true, bias: op !== 'rmsNorm' };
  return {
    run() {
      for (const t of out) t.dispose();
      const g = engine.normBackward(op, dy, x, { ...params, saved: f.saved, outputMask: mask } as never);
      out = [g.dx!, g.dweight!, ...(g.dbias ? [g.dbias] : [])];
    },
    flush: () => engine.flush(),
    dx: () => out[0].read(),
    release() {
      const uploaded = Object.values(params).filter((v): v is Tensor => v instanceof Tensor);
      for (const t of [...out, x, dy, f.y, f.saved.rstd, f.saved.mean, ...uploaded]) t?.dispose();
    },
  };
}

function maxAbs(a: Float32Array, e: Float32Array): number {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Number.isNaN(a[i]) ? Infinity : Math.abs(a[i] - e[i]));
  return m;
}

/** Time every case: normgpu and the copy on a normgpu engine's device, TF.js on its own. */
export async function runBackward(cases: readonly BackwardCase[], tfjs: TfjsGrad | null, log: (line: string) => void = () => {}): Promise<BackwardResult[]> {
  if (!cases.length) return [];
  const engine = await createEngine({ backend: 'webgpu' });
  const reference = await createEngine({ backend: 'cpu' });
  const timer = new GpuTimer(engine.device!);
  const tfTimer = tfjs ? new GpuTimer(tfjs.device) : null;
  const results: BackwardResult[] = [];
  try {
    for (const c of cases) {
      const w = c.workload;
      const data = makeData(w);
      const dy = upstream(w);
      const r: BackwardResult = {
        id: c.id, workload: w, normgpuMs: null, tfjsMs: null, copyMs: null, vsCopy: null, speedupVsTfjs: null, maxError: { normgpu: null, tfjs: null },
      };
      try {
        const ref = prepareNormgpu(reference, w, data, dy);
        ref.run();
        const expected = await ref.dx();
        ref.release();
        const sides: { key: 'normgpu' | 'tfjs'; timer: GpuTimer; p: ReturnType<typeof prepareNormgpu> }[] = [
          { key: 'normgpu', timer, p: prepareNormgpu(engine, w, data, dy) },
        ];
        if (tfjs && tfTimer) {
          try {
            sides.push({ key: 'tfjs', timer: tfTimer, p: tfjs.prepare(w, data, dy) });
          } catch (e) {
            r.error = `TF.js: ${(e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300)}`;
          }
        }
        const samples: Record<string, number[]> = { normgpu: [], tfjs: [] };
        for (const s of [...sides]) {
          try {
            for (let i = 0; i < 2; i++) await s.timer.time(() => s.p.run(), () => s.p.flush());
            r.maxError[s.key] = maxAbs(await s.p.dx(), expected);
          } catch (e) {
            // TF.js's failure leaves normgpu's figures standing.
            if (s.key === 'normgpu') throw e;
            r.error = `TF.js: ${(e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300)}`;
            s.p.release();
            sides.splice(sides.indexOf(s), 1);
          }
        }
        for (let i = 0; i < w.iterations; i++) {
          for (const s of sides) samples[s.key].push((await s.timer.time(() => s.p.run(), () => s.p.flush())).ms);
        }
        for (const s of sides) s.p.release();
        r.normgpuMs = median(samples.normgpu);
        r.tfjsMs = samples.tfjs.length ? median(samples.tfjs) : null;
        r.copyMs = (await measureCeilings(timer, w.numel, w.iterations)).vec4Ms;
        r.vsCopy = r.normgpuMs / r.copyMs;
        r.speedupVsTfjs = r.tfjsMs === null ? null : r.tfjsMs / r.normgpuMs;
      } catch (e) {
        r.error = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);
      }
      results.push(r);
      log(r.normgpuMs === null ? `${c.id}: ${r.error}` : `${c.id}: normgpu ${r.normgpuMs!.toFixed(2)} ms (${r.vsCopy!.toFixed(2)}x the vec4 copy of ${r.copyMs!.toFixed(2)} ms)`
        + (r.tfjsMs !== null ? `, TF.js ${r.tfjsMs.toFixed(2)} ms (${r.speedupVsTfjs!.toFixed(2)}x slower)` : '')
        + `, max |dx error| ${r.maxError.normgpu?.toExponential(1)}${r.maxError.tfjs !== null ? ` / TF.js ${r.maxError.tfjs.toExponential(1)}` : ''}`);
    }
  } finally {
    timer.destroy();
    tfTimer?.destroy();
    engine.dispose();
    reference.dispose();
  }
  return results;
}
