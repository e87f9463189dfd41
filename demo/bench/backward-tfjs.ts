/**
 * TF.js's side of the backward bench (backward.ts): `tf.grads` of the same graphs its forward
 * contender runs (moments, then (x - mean) * rsqrt(var + eps) * weight + bias spelled out; mean
 * of squares for RMSNorm), for dx, dweight and dbias of sum(y * dy), on its WebGPU backend (no
 * CPU backend registered).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
// tfjs-core alone registers no gradient functions.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import type { TfjsGrad } from './backward';
import { EPS, GROUPS, type Workload, type WorkloadData } from './workloads';

interface WebGpuBackendLike {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** TF.js on its WebGPU backend, or null where it cannot start. */
export async function tfjsGrad(): Promise<TfjsGrad | null> {
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend('webgpu'))) return null;
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  return {
    device: backend.device,
    prepare(w: Workload, data: WorkloadData, dy0: Float32Array) {
      const [n, c] = w.dims;
      const nhwc = w.layout === 'NHWC';
      const x = tf.tensor(data.x, [...w.storage]);
      const dy = tf.tensor(dy0, [...w.storage]);
      const rank = w.storage.length;
      const allButBatch = Array.from({ length: rank - 1 }, (_, i) => i + 1);
      const pShape = w.op === 'groupNorm' ? (nhwc ? [1, 1, 1, GROUPS, c / GROUPS] : [1, GROUPS, c / GROUPS, 1, 1])
        : w.layout === 'rows' ? [1, w.dims[1]]
        : nhwc ? [1, 1, 1, c] : [1, c, 1, 1];
      const weight = tf.tensor(data.weight, pShape);
      const bias = data.bias ? tf.tensor(data.bias, pShape) : tf.zeros(pShape);
      // tf.batchNorm's gradient does not take moments' broadcast shapes: the graph is spelled out.
      const norm = (xx: tf.Tensor, m: { mean: tf.Tensor; variance: tf.Tensor }, ww: tf.Tensor, bb: tf.Tensor) => (
        tf.add(tf.mul(tf.mul(tf.sub(xx, m.mean), tf.rsqrt(tf.add(m.variance, EPS))), ww), bb));
      const forward = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Tensor => {
        switch (w.op) {
          case 'bnTrain': case 'bnEval': {
            return norm(xx, tf.moments(xx, nhwc ? [0, 1, 2] : [0, 2, 3], true), ww, bb);
          }
          case 'instanceNorm': {
            return norm(xx, tf.moments(xx, nhwc ? [1, 2] : [2, 3], true), ww, bb);
          }
          case 'groupNorm': {
            const [, , h, wd] = w.dims;
            const x5 = nhwc ? tf.reshape(xx, [n, h, wd, GROUPS, c / GROUPS]) : tf.reshape(xx, [n, GROUPS, c / GROUPS, h, wd]);
            return tf.reshape(norm(x5, tf.moments(x5, nhwc ? [1, 2, 4] : [2, 3, 4], true), ww, bb), [...w.storage]);
          }
          case 'layerNorm': {
            return norm(xx, tf.moments(xx, allButBatch, true), ww, bb);
          }
          case 'rmsNorm': {
            const ms = tf.mean(tf.square(xx), allButBatch, true);
            return tf.mul(tf.mul(xx, tf.rsqrt(tf.add(ms, EPS))), ww);
          }
        }
      };
      // RMSNorm has no bias: tf.grads refuses an input the output does not depend on.
      const rms = w.op === 'rmsNorm';
      const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(forward(a[0], a[1], rms ? bias : a[2]), dy)));
      let out: tf.Tensor[] = [];
      return {
        run() {
          tf.dispose(out);
          out = grads(rms ? [x, weight] : [x, weight, bias]);
        },
        flush() {
          if (backend.commandEncoder) {
            backend.endComputePassEncoder();
            backend.submitQueue();
          }
        },
        async dx() {
          const d = await out[0].data();
          return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
        },
        release() {
          tf.dispose([...out, x, dy, weight, bias]);
        },
      };
    },
  };
}
