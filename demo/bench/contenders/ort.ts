/**
 * ONNX Runtime Web with its WebGPU execution provider, and nothing else: the session lists
 * only 'webgpu' and sets `session.disable_cpu_ep_fallback`, so creating it fails if any node
 * would be placed on the CPU; inputs are GPU buffers and outputs stay GPU buffers
 * (`preferredOutputLocation: 'gpu-buffer'`, checked on every read). Run with ORT's default
 * preferred layout (NHWC: it wraps NCHW-only ops in transposes) and with `preferredLayout: 'NCHW'`.
 *
 * The wasm runtime is served from this site (the demo build copies it out of node_modules);
 * nothing is fetched from a CDN.
 */
import * as ort from 'onnxruntime-web/webgpu';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import { encodeModel } from '../../../bench/onnx-model';
import { Usage } from '../timer';
import type { Workload, WorkloadData } from '../workloads';
import { buildGraph } from './ort-graphs';
import type { Contender, ContenderFactory, Prepared } from './types';

let envReady = false;
let keeper: Promise<GPUDevice> | undefined;

/**
 * ORT's GPUDevice. Any session initializes the WebGPU backend; its device is then the one ORT
 * computes on. ORT drops its device when its last session is released, so one tiny session
 * stays open for the page's lifetime: every later session shares the device our input
 * buffers are made on.
 */
function ortDevice(): Promise<GPUDevice> {
  keeper ??= (async () => {
    const probe = buildGraph(
      { id: 'probe', op: 'layerNorm', layout: 'rows', dims: [1, 4], storage: [1, 4], numel: 4, bytes: 32, tier: 'default', iterations: 1 },
      { x: new Float32Array(4), weight: new Float32Array(4).fill(1), bias: new Float32Array(4), paramLength: 4 },
    );
    await ort.InferenceSession.create(probe.model, sessionOptions());
    return (await ort.env.webgpu.device) as GPUDevice;
  })();
  return keeper;
}

function configureEnv(): void {
  if (envReady) return;
  envReady = true;
  ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, location.href).href, mjs: new URL(mjsUrl, location.href).href };
  // The page is not cross-origin isolated, so the threaded runtime could not start threads.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
}

function sessionOptions(layout?: 'NCHW' | 'NHWC'): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [{ name: 'webgpu', ...(layout ? { preferredLayout: layout } : {}) }],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  };
}

/**
 * The placement proof's other half: with these options a graph whose only node has no WebGPU
 * kernel (Det) must be refused at session creation instead of running on the CPU.
 */
async function checkFallbackDisabled(layout: 'NCHW' | undefined): Promise<string> {
  const model = encodeModel({
    name: 'cpu-only', nodes: [{ op: 'Det', inputs: ['x'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [2, 2] }], outputs: [{ name: 'y', dims: [] }],
  });
  // The model is valid: without the flag ORT accepts it and places Det on its CPU EP.
  await (await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 4 })).release();
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(model, { ...sessionOptions(layout), logSeverityLevel: 4 });
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).slice(0, 200);
  }
  await session.release();
  throw new Error('ORT accepted a graph with a CPU-only node: CPU fallback is not disabled');
}

async function create(layout: 'NCHW' | undefined): Promise<Contender> {
  configureEnv();
  const device = await ortDevice();
  const refusal = await checkFallbackDisabled(layout);
  return {
    id: layout ? 'ort-nchw' : 'ort',
    label: layout ? 'ORT (NCHW)' : 'ORT',
    device,
    info: {
      version: ort.env.versions.web ?? '?',
      'execution providers': "['webgpu'] only, session.disable_cpu_ep_fallback=1 (verified: a graph with a CPU-only Det node is refused)",
      'preferred layout': layout ?? 'default (NHWC)',
      outputs: "preferredOutputLocation 'gpu-buffer'",
      'cpu-only graph refused with': refusal,
    },
    async prepare(w: Workload, data: WorkloadData): Promise<Prepared> {
      const graph = buildGraph(w, data);
      // Creation throws if a node lacks a WebGPU kernel: that is the placement proof.
      const session = await ort.InferenceSession.create(graph.model, sessionOptions(layout));
      const input = device.createBuffer({ size: data.x.byteLength, usage: Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label: 'bench:ort-x' });
      device.queue.writeBuffer(input, 0, data.x.buffer as ArrayBuffer, data.x.byteOffset, data.x.byteLength);
      const feeds = { x: ort.Tensor.fromGpuBuffer(input, { dataType: 'float32', dims: w.storage }) };
      let results: ort.InferenceSession.OnnxValueMapType | undefined;
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

export const ortWebGpu: ContenderFactory = { id: 'ort', label: 'ORT', create: () => create(undefined) };
export const ortWebGpuNchw: ContenderFactory = { id: 'ort-nchw', label: 'ORT (NCHW)', create: () => create('NCHW') };
