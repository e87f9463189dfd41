/**
 * Sharing one GPUDevice with ONNX Runtime Web and TensorFlow.js, in both directions. The peers
 * appear here only as structural types: normgpu imports neither and gains no dependency. Each
 * helper removes a trap of ORT 1.30 / TF.js 4.22 (README: "Interop with ONNX Runtime Web and
 * TF.js").
 */
import type { Engine } from './api/engine';
import type { DType, Layout } from './api/options';
import type { Tensor } from './api/tensor';
import { check, NormGpuError } from './errors';
import { checkShape } from './plan/spec';

/** The `executionProviders` entry that runs an ONNX Runtime Web session on an engine's device. */
export interface OrtWebGpuProvider {
  readonly name: 'webgpu';
  readonly device: GPUDevice;
  readonly preferredLayout?: 'NCHW' | 'NHWC';
}

/** What `ortWebGpuProvider` uses of `ort.env` (onnxruntime-web's `Env`). */
export interface OrtEnvLike {
  readonly webgpu: { adapter?: unknown };
}

/**
 * Put ONNX Runtime Web on `engine`'s GPUDevice, with either of its WebGPU builds; call it
 * before ORT's first WebGPU session and pass the result in `executionProviders`:
 *
 * ```ts
 * const session = await ort.InferenceSession.create(model, {
 *   executionProviders: [ortWebGpuProvider(engine, ort.env)],
 *   preferredOutputLocation: 'gpu-buffer',
 * });
 * ```
 *
 * `onnxruntime-web/webgpu` (the native EP) takes the device from the returned entry, per
 * session. The default import (JSEP) ignores that entry's `device` and `ort.env.webgpu.device`
 * alike and asks `ort.env.webgpu.adapter` for a device once, on its first session; so this
 * also sets that adapter to a stand-in whose `requestDevice()` resolves to the engine's device,
 * and every JSEP session of the page then runs on it. JSEP installs its own
 * `device.onuncapturederror` handler. ORT never destroys a device given this way; normgpu
 * destroys its own device on `engine.dispose()`, so release ORT's sessions first.
 *
 * `options.preferredLayout` goes into the entry as is (default: ORT's).
 *
 * Throws INVALID_ARGUMENT on a CPU-backend engine, or when JSEP already runs on another device
 * (it keeps its first one: create the engine on it instead, `createEngine({ device: await
 * ort.env.webgpu.device })`).
 */
export function ortWebGpuProvider(
  engine: Engine, env: OrtEnvLike, options: { preferredLayout?: 'NCHW' | 'NHWC' } = {},
): OrtWebGpuProvider {
  const device = engine.device;
  check(device, 'INVALID_ARGUMENT', 'ortWebGpuProvider needs a WebGPU-backend engine');
  const webgpu = env.webgpu;
  // JSEP freezes `adapter` and defines `device` once it has started.
  if (Object.getOwnPropertyDescriptor(webgpu, 'adapter')?.writable === false) {
    check(
      Object.getOwnPropertyDescriptor(webgpu, 'device')?.value === device, 'INVALID_ARGUMENT',
      'ONNX Runtime (JSEP) already runs on a GPUDevice of its own and keeps it: call ortWebGpuProvider before its ' +
        'first WebGPU session, or create the engine on ORT\'s device (createEngine({ device: await ort.env.webgpu.device }))',
    );
  } else {
    webgpu.adapter = {
      features: device.features,
      limits: device.limits,
      info: (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo,
      requestDevice: async () => device,
    };
  }
  return { name: 'webgpu', device, ...(options.preferredLayout ? { preferredLayout: options.preferredLayout } : {}) };
}

/** Options of `fromOrt` and `fromTfjs`. */
export interface FromPeerOptions {
  /** Shape in storage order, with the same element count. Default: the peer tensor's. */
  shape?: readonly number[];
  /** Default: the peer's convention, `'channels-first'` for ORT (ONNX is NCHW), `'channels-last'` for TF.js (NHWC). */
  layout?: Layout;
}

/** What `fromOrt` uses of an ONNX Runtime Web tensor (`ort.Tensor`). */
export interface OrtTensorLike {
  readonly location: string;
  readonly type: string;
  readonly dims: readonly number[];
  readonly gpuBuffer: GPUBuffer;
  dispose(): void;
}

/**
 * A normgpu tensor over an ONNX Runtime Web float32 output that stayed on the GPU (session
 * option `preferredOutputLocation: 'gpu-buffer'`), without a copy. The ORT tensor then belongs
 * to the returned tensor: it is disposed with it (`dispose()`, `engine.tidy`, or garbage
 * collection), after normgpu's work that reads it has been submitted; before that, ORT could
 * hand its buffer to a later run. ORT submits its work before `session.run` resolves.
 *
 * Throws, before any GPU work: INVALID_ARGUMENT on a CPU-backend engine or for an output
 * outside a GPU buffer, INVALID_DATA for a type other than float32 or float16 (a float16 output
 * becomes a float16 tensor), DATA_LENGTH_MISMATCH for a `shape` of another element count.
 */
export function fromOrt(engine: Engine, tensor: OrtTensorLike, options: FromPeerOptions = {}): Tensor {
  check(engine.backend === 'webgpu', 'INVALID_ARGUMENT', 'fromOrt needs a WebGPU-backend engine');
  check(
    tensor.location === 'gpu-buffer', 'INVALID_ARGUMENT',
    `the ORT tensor is in '${tensor.location}', not a GPU buffer (session option preferredOutputLocation: 'gpu-buffer')`,
  );
  check(tensor.type === 'float32' || tensor.type === 'float16', 'INVALID_DATA', `the ORT tensor is ${tensor.type}, not float32 or float16`);
  const shape = peerShape(options.shape, tensor.dims, 'ORT');
  return adopt(engine, tensor.gpuBuffer, shape, options.layout ?? 'channels-first', tensor, tensor.type);
}

/** What `fromTfjs` uses of a TF.js tensor (`tf.Tensor` of `@tensorflow/tfjs-core`). */
export interface TfjsTensorLike {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly isDisposed: boolean;
  dataToGPU(): { buffer?: GPUBuffer; tensorRef: { kept: boolean; dispose(): void } };
  dataSync(): ArrayLike<number>;
}

// TF.js's words when a tensor's values were never uploaded (a tf.tensor of host values).
const TFJS_ON_CPU = 'not on GPU but on CPU';

/**
 * A normgpu tensor holding the values of a float32 tensor of TF.js's WebGPU backend on the
 * same GPUDevice. `dataToGPU()` copies them once, on the GPU, and submits TF.js's pending
 * commands with the copy (TF.js delays its submits: wrapping its own buffer while they are
 * unsubmitted would read stale data). The copy is TF.js's, kept out of `tf.tidy` scopes, and
 * is disposed with the returned tensor (`dispose()`, `engine.tidy`, or garbage collection),
 * after normgpu's work that reads it has been submitted. The source tensor stays the caller's.
 * Values TF.js still holds on the host (a `tf.tensor` never used) are uploaded instead.
 *
 * Throws, before any GPU work: INVALID_ARGUMENT on a CPU-backend engine, DISPOSED_TENSOR for a
 * disposed TF.js tensor, INVALID_DATA for a dtype other than float32, DATA_LENGTH_MISMATCH for
 * a `shape` of another element count.
 */
export function fromTfjs(engine: Engine, tensor: TfjsTensorLike, options: FromPeerOptions = {}): Tensor {
  check(engine.backend === 'webgpu', 'INVALID_ARGUMENT', 'fromTfjs needs a WebGPU-backend engine');
  check(!tensor.isDisposed, 'DISPOSED_TENSOR', 'the TF.js tensor was disposed');
  check(tensor.dtype === 'float32', 'INVALID_DATA', `the TF.js tensor is ${tensor.dtype}, not float32`);
  const shape = peerShape(options.shape, tensor.shape, 'TF.js');
  const layout = options.layout ?? 'channels-last';
  let copy: ReturnType<TfjsTensorLike['dataToGPU']>;
  try {
    copy = tensor.dataToGPU();
  } catch (e) {
    if (!(e instanceof Error && e.message.includes(TFJS_ON_CPU))) throw e;
    return engine.tensor(Float32Array.from(tensor.dataSync()), shape, { layout });
  }
  // tf.keep: a copy made inside tf.tidy would go back to TF.js's pool when the scope ends.
  copy.tensorRef.kept = true;
  if (!copy.buffer) {
    copy.tensorRef.dispose();
    throw new NormGpuError('INVALID_ARGUMENT', 'the TF.js tensor is not on the webgpu backend');
  }
  return adopt(engine, copy.buffer, shape, layout, copy.tensorRef);
}

/** The shape to wrap a peer tensor of `dims` with: `shape` if given (same element count). */
function peerShape(shape: readonly number[] | undefined, dims: readonly number[], peer: string): readonly number[] {
  if (shape === undefined) return dims;
  checkShape(shape);
  const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  check(
    count(shape) === count(dims), 'DATA_LENGTH_MISMATCH',
    `shape [${shape}] does not hold the ${count(dims)} values of the ${peer} tensor [${dims}]`,
  );
  return shape;
}

/** Wrap `buffer`; `peer` is disposed with the wrapping tensor, after normgpu's reads of it are submitted. */
function adopt(
  engine: Engine, buffer: GPUBuffer, shape: readonly number[], layout: Layout, peer: { dispose(): void }, dtype: DType = 'float32',
): Tensor {
  try {
    return engine.fromGPUBuffer(buffer, shape, { layout, dtype, onRelease: () => peer.dispose() });
  } catch (e) {
    peer.dispose();
    throw e;
  }
}
