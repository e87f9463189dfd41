/**
 * The in-page half of interop.browser.test.ts, bundled by Vite with normgpu from src/. The
 * peers stay external: the page's import map resolves `onnxruntime-web` (JSEP),
 * `onnxruntime-web/webgpu` (the native EP) and TF.js to their builds in node_modules. A page
 * runs one peer: an ORT runtime, or TF.js's backend, keeps the device it started on.
 */
import type * as Ort from 'onnxruntime-web';
import type * as Tf from '@tensorflow/tfjs-core';
import { encodeModel } from '../../bench/onnx-model';
import { createEngine, fromOrt, fromTfjs, NormGpuError, ortWebGpuProvider, preprocess, type Engine, type Tensor } from '../../src/index';

/** Every mapAsync of the page, whoever calls it: a host round trip. */
let mapAsyncCalls = 0;
const mapAsync = GPUBuffer.prototype.mapAsync;
GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
  mapAsyncCalls++;
  return mapAsync.apply(this, args);
};

/** Who makes the shared device: normgpu (given to the peer) or the peer (given to normgpu). */
export type Owner = 'normgpu' | 'peer';
export type OrtBuild = 'jsep' | 'native';

/** One pipeline run on a shared device. */
export interface Outcome {
  owner: Owner;
  /** Whether the peer reports the engine's device as its own; null where it does not say. */
  sameDevice: boolean | null;
  /** mapAsync calls from the first op to just before the final read. */
  mapAsyncBeforeRead: number;
  /** Max |got - want| / (1 + |want|) against the all-CPU computation. */
  error: number;
  /** A validation error on the shared device during the pipeline, or null. */
  gpuError: string | null;
}

/** What a page reports: its pipelines and the peer behaviours it checked. */
export interface PageReport {
  outcomes: Outcome[];
  facts: Record<string, unknown>;
}

const maxError = (got: ArrayLike<number>, want: ArrayLike<number>): number => {
  if (got.length !== want.length) return Infinity;
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  return Number.isNaN(e) ? Infinity : e;
};

const ramp = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

/** The error code `fn` throws, or 'none'. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    return e instanceof NormGpuError ? e.code : String(e);
  }
}

/** Whether `device` is lost within `ms` (a destroyed device settles `lost` promptly). */
const lostWithin = (device: GPUDevice, ms: number) =>
  Promise.race([device.lost.then(() => true), new Promise<boolean>((ok) => setTimeout(() => ok(false), ms))]);

// ---- ONNX Runtime Web -------------------------------------------------------------------------

const PREPROCESS = { preset: 'imagenet', resize: 20, centerCrop: [16, 18] } as const;
const [CH, CW] = PREPROCESS.centerCrop;
const ORT_SCALE = [1.5, -0.75, 2];
const ORT_SHIFT = [0.25, 0.5, -1];
const LN_WEIGHT = ramp(CW * 3, (i) => 0.5 + (i % 7) / 8);
const LN_BIAS = ramp(CW * 3, (i) => ((i % 5) - 2) / 10);

/** A deterministic RGBA image, 29 × 23. */
function testImage(): ImageData {
  const [w, h] = [29, 23];
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) data.set([(x * 37 + y * 11) % 256, (x * 5 + y * 23) % 256, (x * y) % 256, 255], (y * w + x) * 4);
  }
  return new ImageData(data, w, h);
}

/** The peer's model: per-channel y = x * s + b on NCHW, then a Transpose to NHWC. */
const MODEL = encodeModel({
  name: 'interop',
  nodes: [
    { op: 'Mul', inputs: ['x', 's'], outputs: ['xs'] },
    { op: 'Add', inputs: ['xs', 'b'], outputs: ['xb'] },
    { op: 'Transpose', inputs: ['xb'], outputs: ['y'], attributes: { perm: [0, 2, 3, 1] } },
  ],
  initializers: [
    { name: 's', dims: [1, 3, 1, 1], data: Float32Array.from(ORT_SCALE) },
    { name: 'b', dims: [1, 3, 1, 1], data: Float32Array.from(ORT_SHIFT) },
  ],
  inputs: [{ name: 'x', dims: [1, 3, CH, CW] }],
  outputs: [{ name: 'y', dims: [1, CH, CW, 3] }],
});

/** The ORT pipeline on the CPU: normgpu's CPU backend, and the model in plain JS. */
async function ortReference(image: ImageData): Promise<Float32Array> {
  const cpu = await createEngine({ backend: 'cpu' });
  try {
    const x = await preprocess(cpu, image, PREPROCESS).read();
    const y = new Float32Array(x.length);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < CH * CW; p++) y[p * 3 + c] = Math.fround(Math.fround(x[c * CH * CW + p] * ORT_SCALE[c]) + ORT_SHIFT[c]);
    }
    const z = cpu.tensor(y, [1, CH, CW, 3], { layout: 'channels-last' });
    return await cpu.layerNorm(z, { normalizedShape: [CW, 3], weight: LN_WEIGHT, bias: LN_BIAS }).read();
  } finally {
    cpu.dispose();
  }
}

type OrtModule = typeof Ort;

function sessionOptions(provider: Ort.InferenceSession.ExecutionProviderConfig): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    preferredOutputLocation: 'gpu-buffer',
    logSeverityLevel: 3,
    // No node may fall back to ORT's CPU EP.
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  };
}

/**
 * preprocess → ort.Tensor.fromGpuBuffer → session (output kept on the GPU) → fromOrt →
 * layerNorm → read, in a validation error scope of the shared device.
 */
async function ortPipeline(
  ort: OrtModule, engine: Engine, session: Ort.InferenceSession, owner: Owner, sameDevice: boolean | null, facts: Record<string, unknown>,
): Promise<Outcome> {
  const image = testImage();
  const want = await ortReference(image);
  const device = engine.device!;
  device.pushErrorScope('validation');
  const maps = mapAsyncCalls;
  const x = preprocess(engine, image, PREPROCESS);
  // Taking x.buffer submits normgpu's pending work: ORT may read it at once.
  const { y } = await session.run({ x: ort.Tensor.fromGpuBuffer(x.buffer, { dataType: 'float32', dims: x.shape }) });
  const z = fromOrt(engine, y, { layout: 'channels-last' });
  const out = engine.layerNorm(z, { normalizedShape: [CW, 3], weight: LN_WEIGHT, bias: LN_BIAS });
  const mapAsyncBeforeRead = mapAsyncCalls - maps;
  const got = await out.read();
  const gpuError = (await device.popErrorScope())?.message ?? null;
  for (const t of [out, z, x]) t.dispose();
  const disposed = 'ORT output disposed with its fromOrt tensor'; // in every pipeline of the page
  facts[disposed] = facts[disposed] !== false && y.location === 'none';
  facts['fromOrt of an output on the CPU'] = codeOf(() => fromOrt(engine, new ort.Tensor('float32', new Float32Array(4), [4])));
  return { owner, sameDevice, mapAsyncBeforeRead, error: maxError(got, want), gpuError };
}

/** Run the ORT pipeline with each owner in turn (JSEP keeps its first device: one owner a page). */
async function ortPage(build: OrtBuild, owners: Owner[]): Promise<PageReport> {
  const ort = (build === 'jsep' ? await import('onnxruntime-web') : await import('onnxruntime-web/webgpu')) as OrtModule;
  // Not cross-origin isolated: no threads. The wasm loads from next to the module.
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const outcomes: Outcome[] = [];
  const facts: Record<string, unknown> = {};
  for (const owner of owners) {
    if (owner === 'normgpu') {
      const engine = await createEngine({ backend: 'webgpu' });
      const session = await ort.InferenceSession.create(MODEL, sessionOptions(ortWebGpuProvider(engine, ort.env)));
      // JSEP reports its device; the native EP leaves env.webgpu.device unset for a given device.
      const reported = (await ort.env.webgpu.device) as GPUDevice | undefined;
      outcomes.push(await ortPipeline(ort, engine, session, owner, reported === undefined ? null : reported === engine.device, facts));
      await session.release();
      facts['given device alive after its last session is released'] = !(await lostWithin(engine.device!, 300));
      if (build === 'jsep') {
        const other = await createEngine({ backend: 'webgpu' });
        facts['ortWebGpuProvider for a second device (JSEP started)'] = codeOf(() => ortWebGpuProvider(other, ort.env));
        other.dispose();
      }
      engine.dispose();
    } else {
      let session: Ort.InferenceSession;
      if (build === 'jsep') {
        // The trap: JSEP ignores a device given in the EP entry alone, and makes its own.
        const bystander = await createEngine({ backend: 'webgpu' });
        session = await ort.InferenceSession.create(MODEL, sessionOptions({ name: 'webgpu', device: bystander.device! }));
        facts['EP option device used (JSEP)'] = (await ort.env.webgpu.device) === bystander.device;
        bystander.dispose();
      } else {
        session = await ort.InferenceSession.create(MODEL, sessionOptions('webgpu'));
      }
      const device = await ort.env.webgpu.device;
      const engine = await createEngine({ backend: 'webgpu', device });
      outcomes.push(await ortPipeline(ort, engine, session, owner, engine.device === device, facts));
      await session.release();
      // ORT's destroy can settle `lost` late on a loaded machine: wait long enough for it.
      facts['own device alive after its last session is released'] = !(await lostWithin(device, 10_000));
      engine.dispose();
    }
  }
  return { outcomes, facts };
}

// ---- TensorFlow.js ----------------------------------------------------------------------------

const TF_SHAPE = [2, 5, 6, 8]; // NHWC, 8 channels in 4 groups
const TF_GROUPS = 4;
const TF_INPUT = ramp(2 * 5 * 6 * 8, (i) => Math.sin(i * 0.37) * 3 + (i % 8));
const GN_WEIGHT = ramp(8, (i) => 1 + i / 4);
const GN_BIAS = ramp(8, (i) => i / 10 - 0.3);

/** The TF.js pipeline on the CPU: a = (x + 1) * 0.5, groupNorm, then sum over W of relu(y - 0.25). */
async function tfReference(): Promise<Float32Array> {
  const a = TF_INPUT.map((v) => Math.fround(Math.fround(v + 1) * 0.5));
  const cpu = await createEngine({ backend: 'cpu' });
  try {
    const x = cpu.tensor(a, TF_SHAPE, { layout: 'channels-last' });
    const y = await cpu.groupNorm(x, { numGroups: TF_GROUPS, weight: GN_WEIGHT, bias: GN_BIAS }).read();
    const [n, h, w, c] = TF_SHAPE;
    const r = new Float32Array(n * h * c);
    for (let i = 0; i < n * h; i++) {
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let j = 0; j < w; j++) s += Math.max(y[(i * w + j) * c + k] - 0.25, 0);
        r[i * c + k] = s;
      }
    }
    return r;
  } finally {
    cpu.dispose();
  }
}

/**
 * TF.js ops left unsubmitted → fromTfjs → groupNorm → tf.tensor({ buffer, zeroCopy }) → TF.js
 * ops → read, then fromTfjs's traps: a copy made in tf.tidy, host-resident values, disposal.
 */
async function tfjsPage(owner: Owner): Promise<PageReport> {
  const tf = (await import('@tensorflow/tfjs-core')) as typeof Tf;
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  let engine: Engine;
  if (owner === 'normgpu') {
    engine = await createEngine({ backend: 'webgpu' });
    const device = engine.device!;
    // Replace the package's registration (its factory makes a device); under another name the
    // backend would find no kernels.
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', async () => new WebGPUBackend(device), 10);
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js did not start on the given device');
  } else {
    if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its webgpu backend');
    engine = await createEngine({ backend: 'webgpu', device: (tf.backend() as InstanceType<typeof WebGPUBackend>).device });
  }
  const device = engine.device!;
  const sameDevice = (tf.backend() as InstanceType<typeof WebGPUBackend>).device === device;
  const want = await tfReference();

  device.pushErrorScope('validation');
  const input = tf.tensor(TF_INPUT, TF_SHAPE);
  const maps = mapAsyncCalls;
  const a = tf.mul(tf.add(input, 1), 0.5); // two dispatches TF.js has not submitted yet
  const x = fromTfjs(engine, a);
  const y = engine.groupNorm(x, { numGroups: TF_GROUPS, weight: GN_WEIGHT, bias: GN_BIAS });
  // Without a copy: y must outlive t (TF.js neither owns nor destroys the buffer).
  const t = tf.tensor({ buffer: y.buffer, zeroCopy: true }, TF_SHAPE, 'float32');
  const r = tf.sum(tf.relu(tf.sub(t, 0.25)), 2);
  const mapAsyncBeforeRead = mapAsyncCalls - maps;
  const got = await r.data();
  const gpuError = (await device.popErrorScope())?.message ?? null;
  tf.dispose([input, a, t, r]);
  for (const u of [y, x]) u.dispose();

  const facts: Record<string, unknown> = {};
  const values = ramp(TF_INPUT.length, (i) => i / 7);
  const numTensors = tf.memory().numTensors;
  // A copy made inside tf.tidy must outlive the scope, even once TF.js reuses freed buffers.
  const source = tf.tensor(values, TF_SHAPE);
  const made: Tensor[] = [];
  tf.tidy(() => {
    made.push(fromTfjs(engine, tf.add(source, 0)));
  });
  const [inTidy] = made;
  const churn = tf.tidy(() => tf.mul(tf.add(source, 100), 3));
  await churn.data();
  facts['fromTfjs copy made in tf.tidy intact'] = maxError(await inTidy.read(), values) === 0;
  inTidy.dispose();
  tf.dispose([source, churn]);
  facts['TF.js tensors left after disposing'] = tf.memory().numTensors - numTensors;
  const host = tf.tensor(values, TF_SHAPE);
  const fromHost = fromTfjs(engine, host);
  facts['fromTfjs of host-resident values'] = maxError(await fromHost.read(), values) === 0;
  fromHost.dispose();
  const onGpu = tf.add(host, 0);
  const before = tf.memory().numTensors;
  engine.tidy(() => {
    fromTfjs(engine, onGpu);
  });
  facts['TF.js tensors left after engine.tidy'] = tf.memory().numTensors - before;
  onGpu.dispose();
  facts['fromTfjs with a shape of another size'] = codeOf(() => fromTfjs(engine, host, { shape: [2, 5, 6, 7] }));
  facts['fromTfjs of an int32 tensor'] = codeOf(() => fromTfjs(engine, tf.tensor([1, 2], [2], 'int32')));
  host.dispose();
  facts['fromTfjs of a disposed tensor'] = codeOf(() => fromTfjs(engine, host));
  engine.dispose();
  return { outcomes: [{ owner, sameDevice, mapAsyncBeforeRead, error: maxError(got, want), gpuError }], facts };
}

declare global {
  interface Window {
    interop: {
      ort(build: OrtBuild, owners: Owner[]): Promise<PageReport>;
      tfjs(owner: Owner): Promise<PageReport>;
    };
  }
}

window.interop = { ort: ortPage, tfjs: tfjsPage };
