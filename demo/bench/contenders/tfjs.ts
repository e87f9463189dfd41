/**
 * TensorFlow.js on its WebGPU backend. TF.js has no LayerNorm/InstanceNorm/GroupNorm/RMSNorm
 * op: each is the usual composition of `tf.moments` + `tf.batchNorm` (or mean-of-squares for
 * RMSNorm), which is how TF.js models express them. Only the webgpu backend is registered
 * (tfjs-core + tfjs-backend-webgpu, no CPU backend), and WEBGPU_CPU_FORWARD is off, so no
 * kernel can run on the CPU.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { EPS, GROUPS, MOMENTUM, type Workload, type WorkloadData } from '../workloads';
import type { Contender, ContenderFactory, Prepared } from './types';

/** The internals of tfjs-backend-webgpu's WebGPUBackend that the timer needs. */
interface WebGpuBackendLike {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  tensorMap: { get(id: object): { resource?: unknown } | undefined };
}

function composition(w: Workload): string {
  switch (w.op) {
    case 'bnTrain': return 'moments + batchNorm + running-stat update';
    case 'bnEval': return 'batchNorm';
    case 'rmsNorm': return 'mean(square) + rsqrt + mul';
    case 'groupNorm': return 'reshape + moments + batchNorm';
    default: return 'moments + batchNorm';
  }
}

async function create(): Promise<Contender> {
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not initialize its webgpu backend');
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const registered = Object.keys((tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory);
  const device = backend.device;
  const info = {
    version: tf.version_core,
    backend: tf.getBackend(),
    'registered backends': registered.join(', '),
    'cpu forward': String(tf.env().getBool('WEBGPU_CPU_FORWARD')),
  };
  return {
    id: 'tfjs',
    label: 'TF.js',
    device,
    info,
    async prepare(w: Workload, data: WorkloadData): Promise<Prepared> {
      const [n, c] = w.dims;
      const nhwc = w.layout === 'NHWC';
      const x = tf.tensor(data.x, [...w.storage]);
      // Per-channel parameters broadcast along the channel axis of the storage shape.
      const chShape = w.layout === 'NCHW' ? [1, c, 1, 1] : [c];
      const elemShape = [1, ...w.storage.slice(1)];
      const pShape = w.op === 'groupNorm' ? (nhwc ? [1, 1, 1, GROUPS, c / GROUPS] : [1, GROUPS, c / GROUPS, 1, 1])
        : w.op === 'instanceNorm' ? (nhwc ? [1, 1, 1, c] : [1, c, 1, 1])
        : w.op === 'bnTrain' || w.op === 'bnEval' ? chShape : elemShape;
      const weight = tf.tensor(data.weight, pShape);
      const bias = data.bias ? tf.tensor(data.bias, pShape) : undefined;
      let runningMean = data.runningMean ? tf.tensor(data.runningMean, chShape) : undefined;
      let runningVar = data.runningVar ? tf.tensor(data.runningVar, chShape) : undefined;
      const rank = w.storage.length;
      const allButBatch = Array.from({ length: rank - 1 }, (_, i) => i + 1);
      let y: tf.Tensor | undefined;

      const compute = (): tf.Tensor => {
        switch (w.op) {
          case 'bnEval':
            return tf.batchNorm(x, runningMean!, runningVar!, bias, weight, EPS);
          case 'bnTrain': {
            const axes = nhwc ? [0, 1, 2] : [0, 2, 3];
            const { mean, variance } = tf.moments(x, axes, !nhwc);
            const out = tf.batchNorm(x, mean, variance, bias, weight, EPS);
            const count = w.numel / c;
            const rm = tf.add(tf.mul(runningMean!, 1 - MOMENTUM), tf.mul(mean, MOMENTUM));
            const rv = tf.add(tf.mul(runningVar!, 1 - MOMENTUM), tf.mul(variance, (MOMENTUM * count) / (count - 1)));
            tf.keep(rm);
            tf.keep(rv);
            runningMean!.dispose();
            runningVar!.dispose();
            runningMean = rm;
            runningVar = rv;
            return out;
          }
          case 'layerNorm': {
            const { mean, variance } = tf.moments(x, allButBatch, true);
            return tf.batchNorm(x, mean, variance, bias, weight, EPS);
          }
          case 'instanceNorm': {
            const { mean, variance } = tf.moments(x, nhwc ? [1, 2] : [2, 3], true);
            return tf.batchNorm(x, mean, variance, bias, weight, EPS);
          }
          case 'groupNorm': {
            const [, , h, wd] = w.dims;
            const x5 = nhwc ? tf.reshape(x, [n, h, wd, GROUPS, c / GROUPS]) : tf.reshape(x, [n, GROUPS, c / GROUPS, h, wd]);
            const { mean, variance } = tf.moments(x5, nhwc ? [1, 2, 4] : [2, 3, 4], true);
            return tf.reshape(tf.batchNorm(x5, mean, variance, bias, weight, EPS), [...w.storage]);
          }
          case 'rmsNorm': {
            const ms = tf.mean(tf.square(x), allButBatch, true);
            return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, EPS))), weight);
          }
        }
      };

      return {
        run() {
          y?.dispose();
          y = tf.tidy(compute);
        },
        flush() {
          if (backend.commandEncoder) {
            backend.endComputePassEncoder();
            backend.submitQueue();
          }
        },
        async read() {
          const out = await y!.data();
          // Proof that the output lived in a GPU buffer, not in host memory.
          if (!(backend.tensorMap.get(y!.dataId)?.resource instanceof GPUBuffer)) throw new Error('TF.js output is not a GPUBuffer');
          return out instanceof Float32Array ? out : Float32Array.from(out as ArrayLike<number>);
        },
        note: composition(w),
        release() {
          y?.dispose();
          for (const t of [x, weight, bias, runningMean, runningVar]) t?.dispose();
        },
      };
    },
    dispose() {
      // The backend (and its device) stays registered for later runs on this page.
    },
  };
}

export const tfjsWebGpu: ContenderFactory = { id: 'tfjs', label: 'TF.js', create };
