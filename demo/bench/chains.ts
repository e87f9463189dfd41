/**
 * Chains of small ops (issue 8): N ops issued back to back, each on the previous output, timed
 * batched (normgpu's default: the chain shares one command encoder and one queue.submit) and
 * with one submit per op (`engine.flush()` after each, as an unbatched engine would), both
 * until `onSubmittedWorkDone`. Reported per op; the submits are counted, not assumed.
 */
import { createEngine, type Engine, type Tensor } from '../../src/index';
import { callOp, planNote, uploadData } from './contenders/normgpu';
import { GpuTimer, median } from './timer';
import { makeData, makeWorkload, type LayoutKind, type OpKind, type Workload } from './workloads';

export interface Chain {
  /** `chain/<workload id>/<length>`: `--filter` matches it like a workload id. */
  id: string;
  workload: Workload;
  /** Ops in the chain. */
  length: number;
  /** Timed chains per mode. */
  iterations: number;
}

export interface ChainModeResult {
  /** Median wall ms of the whole chain, from the first call to onSubmittedWorkDone. */
  wallMs: number;
  /** wallMs / length: the figure compared. */
  msPerOp: number;
  /** Median GPU ms of the chain (timestamps around it, gaps between submits included), or null. */
  gpuMs: number | null;
  /** queue.submit calls the chain made (counted). */
  submits: number;
  samples: number[];
}

export interface ChainResult {
  id: string;
  workload: Workload;
  length: number;
  iterations: number;
  batched: ChainModeResult | null;
  perOp: ChainModeResult | null;
  /** perOp.msPerOp / batched.msPerOp: how much less time a small op takes batched. */
  ratio: number | null;
  /** Max |y - reference| of the chain's final output, over both modes. */
  maxError: number | null;
  /** The kernels of one op of the chain. */
  note?: string;
  error?: string;
}

export type ChainMode = 'batched' | 'perOp';

function chain(op: OpKind, layout: LayoutKind, dims: number[], length: number, iterations: number): Chain {
  const workload = makeWorkload(op, layout, dims, 'default', iterations);
  return { id: `chain/${workload.id}/${length}`, workload, length, iterations };
}

/**
 * The chains of every scope: 100 LayerNorms of [1,768] (a transformer's per-token norms) and
 * 50 GroupNorms (32 groups) of [8,64,56,56]. `iterations` overrides the timed count.
 */
export function allChains(iterations?: number): Chain[] {
  return [
    chain('layerNorm', 'rows', [1, 768], 100, iterations ?? 20),
    chain('groupNorm', 'NCHW', [8, 64, 56, 56], 50, iterations ?? 3),
  ];
}

/** Issue the chain on `engine`: each op on the previous output; per-op mode flushes after each. */
function issue(engine: Engine, c: Chain, t: ReturnType<typeof uploadData>, mode: ChainMode): Tensor {
  let y = t.x;
  for (let i = 0; i < c.length; i++) {
    const next = callOp(engine, c.workload, { ...t, x: y });
    if (y !== t.x) y.dispose();
    y = next;
    if (mode === 'perOp') engine.flush();
  }
  engine.flush();
  return y;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length && m !== Infinity; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * Time each chain in both modes, interleaved iteration by iteration (the starting mode
 * alternates), on a WebGPU engine of its own; outputs are checked against `reference`.
 */
export async function runChains(chains: readonly Chain[], reference: Engine, onChain?: (c: Chain) => void): Promise<ChainResult[]> {
  const out: ChainResult[] = [];
  const empty = (c: Chain): ChainResult => ({ id: c.id, workload: c.workload, length: c.length, iterations: c.iterations, batched: null, perOp: null, ratio: null, maxError: null });
  if (!chains.length) return out;
  let engine: Engine;
  try {
    engine = await createEngine({ backend: 'webgpu' });
  } catch (e) {
    return chains.map((c) => ({ ...empty(c), error: errorText(e) }));
  }
  const device = engine.device!;
  const timer = new GpuTimer(device);
  // Count the chain's submits: wrap the queue's submit (the device is this engine's own).
  const queue = device.queue;
  const submit = queue.submit.bind(queue);
  let submits = 0;
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    submits++;
    submit(buffers);
  };
  try {
    for (const c of chains) {
      onChain?.(c);
      const r = empty(c);
      out.push(r);
      const data = makeData(c.workload);
      const rt = uploadData(reference, c.workload, data);
      const t = uploadData(engine, c.workload, data);
      try {
        r.note = planNote(engine, c.workload, t);
        const ref = issue(reference, c, rt, 'batched');
        const want = await ref.read();
        ref.dispose();
        // Warm-up (pipelines) and the output check, per mode.
        r.maxError = 0;
        for (const mode of ['batched', 'perOp'] as const) {
          const y = issue(engine, c, t, mode);
          r.maxError = Math.max(r.maxError, maxAbsDiff(await y.read(), want));
          y.dispose();
        }
        const s = { batched: { wall: [] as number[], gpu: [] as number[], submits: 0 }, perOp: { wall: [] as number[], gpu: [] as number[], submits: 0 } };
        for (let i = 0; i < c.iterations; i++) {
          for (const mode of (i % 2 ? ['perOp', 'batched'] : ['batched', 'perOp']) as ChainMode[]) {
            let y: Tensor | undefined;
            let made = 0;
            const timing = await timer.time(() => {
              const before = submits;
              y = issue(engine, c, t, mode);
              made = submits - before;
            });
            s[mode].submits = Math.max(s[mode].submits, made);
            s[mode].wall.push(timing.wallMs);
            if (timing.method === 'timestamp') s[mode].gpu.push(timing.ms);
            y!.dispose();
          }
        }
        const summary = (m: ChainMode): ChainModeResult => {
          const wallMs = median(s[m].wall);
          return {
            wallMs,
            msPerOp: wallMs / c.length,
            gpuMs: s[m].gpu.length === s[m].wall.length ? median(s[m].gpu) : null,
            submits: s[m].submits,
            samples: s[m].wall.map((v) => Math.round(v * 1000) / 1000),
          };
        };
        r.batched = summary('batched');
        r.perOp = summary('perOp');
        r.ratio = r.perOp.msPerOp / r.batched.msPerOp;
      } catch (e) {
        r.error = errorText(e);
      } finally {
        for (const v of [...Object.values(rt), ...Object.values(t)]) v?.dispose();
      }
    }
  } finally {
    timer.destroy();
    engine.dispose();
  }
  return out;
}
