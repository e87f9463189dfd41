/**
 * Bandwidth ceilings for a tensor of `numel` float32: `copyBufferToBuffer` of its bytes, and a
 * WGSL kernel that reads and writes each element once as vec4 (256 invocations per
 * workgroup, one vec4 each). A normalization that reads its input once and writes its output
 * once cannot beat the vec4 copy; `xvec4` in the table is a contender's time over this one.
 */
import { GpuTimer, median, Usage } from './timer';

const VEC4_COPY = /* wgsl */ `
struct Params { n: u32, stride: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * params.stride;
  if (i < params.n) {
    dst[i] = src[i];
  }
}
`;

export interface CeilingResult {
  numel: number;
  bytes: number;
  /** Median ms of copyBufferToBuffer of numel * 4 bytes. */
  copyMs: number;
  /** Median ms of the vec4 copy kernel over numel floats. */
  vec4Ms: number;
  method: 'timestamp' | 'wall';
}

const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>();

function vec4Pipeline(device: GPUDevice): GPUComputePipeline {
  let p = pipelines.get(device);
  if (!p) {
    const module = device.createShaderModule({ label: 'bench:vec4-copy', code: VEC4_COPY });
    p = device.createComputePipeline({ label: 'bench:vec4-copy', layout: 'auto', compute: { module, entryPoint: 'main' } });
    pipelines.set(device, p);
  }
  return p;
}

/** Measure both ceilings for `numel` floats (numel % 4 == 0), `iterations` times each, interleaved. */
export async function measureCeilings(timer: GpuTimer, numel: number, iterations = 10): Promise<CeilingResult> {
  const device = timer.device;
  const bytes = numel * 4;
  const usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
  const src = device.createBuffer({ size: bytes, usage, label: 'bench:ceiling-src' });
  const dst = device.createBuffer({ size: bytes, usage, label: 'bench:ceiling-dst' });
  const vecs = numel / 4;
  const groups = Math.ceil(vecs / 256);
  const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const gy = Math.ceil(groups / gx);
  const uniform = device.createBuffer({ size: 16, usage: Usage.UNIFORM | Usage.COPY_DST, label: 'bench:ceiling-params' });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([vecs, gx * 256, 0, 0]));
  const pipeline = vec4Pipeline(device);
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: uniform } }, { binding: 1, resource: { buffer: src } }, { binding: 2, resource: { buffer: dst } }],
  });
  const copy = () => {
    const e = device.createCommandEncoder({ label: 'bench:copy' });
    e.copyBufferToBuffer(src, 0, dst, 0, bytes);
    device.queue.submit([e.finish()]);
  };
  const kernel = () => {
    const e = device.createCommandEncoder({ label: 'bench:vec4' });
    const pass = e.beginComputePass({ label: 'bench:vec4' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    device.queue.submit([e.finish()]);
  };
  try {
    // Warm-up: first touches of the buffers and pipeline creation.
    await timer.time(copy);
    await timer.time(kernel);
    const copyMs: number[] = [];
    const vec4Ms: number[] = [];
    let method: 'timestamp' | 'wall' = 'timestamp';
    for (let i = 0; i < iterations; i++) {
      const a = await timer.time(copy);
      const b = await timer.time(kernel);
      copyMs.push(a.ms);
      vec4Ms.push(b.ms);
      if (a.method === 'wall' || b.method === 'wall') method = 'wall';
    }
    return { numel, bytes: bytes * 2, copyMs: median(copyMs), vec4Ms: median(vec4Ms), method };
  } finally {
    src.destroy();
    dst.destroy();
    uniform.destroy();
  }
}
