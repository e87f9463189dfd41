/**
 * ONNX Runtime Web with a WebGPU execution provider, and nothing else: the session lists only
 * 'webgpu' and sets `session.disable_cpu_ep_fallback`, so creating it fails if any node would
 * be placed on the CPU; inputs are GPU buffers and outputs stay GPU buffers
 * (`preferredOutputLocation: 'gpu-buffer'`, checked on every read). Run with ORT's default
 * preferred layout (NHWC: it wraps NCHW-only ops in transposes) and with `preferredLayout: 'NCHW'`.
 *
 * The package ships two WebGPU backends, each its own module graph and wasm runtime
 * (ort-jsep.ts, ort-webgpu.ts); this file is the contender both share. The wasm runtime is
 * served from this site (the demo build copies it out of node_modules); nothing is fetched
 * from a CDN.
 */
import type * as Ort from 'onnxruntime-web';
import { encodeModel } from '../../../bench/onnx-model';
import { Usage } from '../timer';
import type { Workload, WorkloadData } from '../workloads';
import { buildGraph } from './ort-graphs';
import type { Contender, ContenderFactory, Prepared } from './types';

type OrtModule = typeof Ort;

/** One of the package's builds: its module namespace and the URLs of its wasm runtime. */
export interface OrtBuild {
  ort: OrtModule;
  /** Contender id of the default layout; the NCHW one appends `-nchw`. */
  id: string;
  label: string;
  /** How a user gets this build, for the report. */
  entry: string;
  wasmUrl: string;
  mjsUrl: string;
}

/**
 * preferredLayout only rewrites layout-sensitive ops; of the ops these graphs use, those are
 * BatchNormalization and InstanceNormalization. Any other graph is the default-layout one.
 */
const LAYOUT_SENSITIVE = new Set<Workload['op']>(['bnEval', 'instanceNorm']);

function sessionOptions(layout?: 'NCHW'): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [{ name: 'webgpu', ...(layout ? { preferredLayout: layout } : {}) }],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  };
}

/** Per build: its env set up once, and the device its sessions share. */
const devices = new WeakMap<OrtModule, Promise<GPUDevice>>();

/**
 * The build's GPUDevice. Any session initializes the WebGPU backend; its device is then the
 * one ORT computes on. ORT drops its device when its last session is released, so one tiny
 * session stays open for the page's lifetime: every later session shares the device our
 * input buffers are made on.
 */
function ortDevice(b: OrtBuild): Promise<GPUDevice> {
  let device = devices.get(b.ort);
  if (!device) {
    const { ort } = b;
    ort.env.wasm.wasmPaths = { wasm: new URL(b.wasmUrl, location.href).href, mjs: new URL(b.mjsUrl, location.href).href };
    // The page is not cross-origin isolated, so the threaded runtime could not start threads.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    device = (async () => {
      const probe = buildGraph(
        { id: 'probe', op: 'layerNorm', layout: 'rows', dims: [1, 4], storage: [1, 4], numel: 4, bytes: 32, tier: 'default', iterations: 1 },
        { x: new Float32Array(4), weight: new Float32Array(4).fill(1), bias: new Float32Array(4), paramLength: 4 },
      );
      await ort.InferenceSession.create(probe.model, sessionOptions());
      return (await ort.env.webgpu.device) as GPUDevice;
    })();
    devices.set(b.ort, device);
  }
  return device;
}

/**
 * The placement proof's other half: with these options a graph whose only node has no WebGPU
 * kernel (Det) must be refused at session creation instead of running on the CPU.
 */
async function checkFallbackDisabled(ort: OrtModule, layout: 'NCHW' | undefined): Promise<string> {
  const model = encodeModel({
    name: 'cpu-only', nodes: [{ op: 'Det', inputs: ['x'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [2, 2] }], outputs: [{ name: 'y', dims: [] }],
  });
  // The model is valid: without the flag ORT accepts it and places Det on its CPU EP.
  await (await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 4 })).release();
  let session: Ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(model, { ...sessionOptions(layout), logSeverityLevel: 4 });
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).slice(0, 200);
  }
  await session.release();
  throw new Error('ORT accepted a graph with a CPU-only node: CPU fallback is not disabled');
}

async function create(b: OrtBuild, layout: 'NCHW' | undefined): Promise<Contender> {
  const { ort } = b;
  const device = await ortDevice(b);
  const refusal = await checkFallbackDisabled(ort, layout);
  return {
    id: layout ? `${b.id}-nchw` : b.id,
    label: layout ? `${b.label} (NCHW)` : b.label,
    device,
    info: {
      version: ort.env.versions.web ?? '?',
      build: b.entry,
      'execution providers': "['webgpu'] only, session.disable_cpu_ep_fallback=1 (verified: a graph with a CPU-only Det node is refused)",
      'preferred layout': layout ?? 'default (NHWC)',
      outputs: "preferredOutputLocation 'gpu-buffer'",
      'cpu-only graph refused with': refusal,
    },
    skip: (w) => (layout && !LAYOUT_SENSITIVE.has(w.op)
      ? 'preferredLayout rewrites only BatchNormalization and InstanceNormalization: this graph is the default-layout one'
      : null),
    async prepare(w: Workload, data: WorkloadData): Promise<Prepared> {
      const graph = buildGraph(w, data);
      // Creation throws if a node lacks a WebGPU kernel: that is the placement proof.
      const session = await ort.InferenceSession.create(graph.model, sessionOptions(layout));
      const input = device.createBuffer({ size: data.x.byteLength, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label: 'bench:ort-x' });
      device.queue.writeBuffer(input, 0, data.x.buffer as ArrayBuffer, data.x.byteOffset, data.x.byteLength);
      const feeds = { x: ort.Tensor.fromGpuBuffer(input, { dataType: 'float32', dims: w.storage }) };
      let results: Ort.InferenceSession.OnnxValueMapType | undefined;
      const drop = () => {
        for (const v of Object.values(results ?? {})) v.dispose();
        results = undefined;
      };
      return {
        async run() {
          drop();
          results = await session.run(feeds);
        },
        async read() {
          const y = results!.y;
          if (y.location !== 'gpu-buffer') throw new Error(`ORT output is in '${y.location}', not a GPU buffer`);
          return (await y.getData()) as Float32Array;
        },
        note: graph.note,
        release() {
          drop();
          void session.release();
          input.destroy();
        },
      };
    },
    dispose() {},
  };
}

/** The build's two contenders: ORT's default preferred layout, and `preferredLayout: 'NCHW'`. */
export function ortContenders(b: OrtBuild): [ContenderFactory, ContenderFactory] {
  return [
    { id: b.id, label: b.label, create: () => create(b, undefined) },
    { id: `${b.id}-nchw`, label: `${b.label} (NCHW)`, create: () => create(b, 'NCHW') },
  ];
}
