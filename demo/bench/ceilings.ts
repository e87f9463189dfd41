/**
 * Bandwidth ceilings for a tensor of `numel` float32: `copyBufferToBuffer` of its bytes, and a
 * WGSL kernel that reads and writes each element once as vec4 (256 invocations per
 * workgroup, one vec4 each). A normalization that reads its input once and writes its output
 * once cannot beat the vec4 copy by much; `xvec4` in the table is a contender's time over this
 * one, the reference kernel an independent harness would use.
 *
 * Optionally also the parts that each workload's access floor is summed from (accessFloor in
 * workloads.ts):
 * - copy: the vec4 copy (the apply of an op whose affine parameters are per channel);
 * - read: loads each vec4 of x and accumulates it (a statistics pass that reads x once);
 * - scale: y = x * w[i % P] (the apply of an RMSNorm with an elementwise weight);
 * - affine: y = x * w[i % P] + b[i % P] (the apply of a LayerNorm with elementwise weight and bias).
 * Each part runs in two shapes: one vec4 per invocation (GPU-shaped: neighbouring invocations
 * touch neighbouring vec4s) and LOOP_VEC4S consecutive vec4s per invocation, the shape a
 * CPU-backed adapter (SwiftShader) rewards, where per-invocation overhead rather than memory
 * bounds a one-vec4 kernel. The floor takes the faster shape per part, so that it is a lower
 * bound for those accesses on whatever adapter the run has.
 */
import { GpuTimer, median, Usage } from './timer';

/** Consecutive vec4s per invocation in the looped shape. */
export const LOOP_VEC4S = 16;

/** The kernels an access floor is summed from. */
export type FloorPart = 'copy' | 'read' | 'scale' | 'affine';
/** `one`: one vec4 per invocation; `loop`: LOOP_VEC4S consecutive vec4s per invocation. */
export type KernelShape = 'one' | 'loop';

// Every kernel's uniforms: n vec4s, the row stride of the 2-D grid in invocations, P / 4, and
// a flag that is 0. Each kernel supplies part(i, p), its work on vec4 i with parameter index
// p = i % P, and finish(); the two entry points wrap them in the two shapes. On SwiftShader,
// where per-invocation overhead dominates a one-vec4 kernel, main as a one-trip loop
// (VEC4S = 1) cost 60% more, and with finish() outside the bounds check 10% more.
const SHAPES = /* wgsl */ `
struct Params { n: u32, stride: u32, pvec: u32, flag: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// Consecutive vec4s per invocation of main_loop.
override VEC4S: u32 = 16u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * params.stride;
  if (i < params.n) {
    part(i, i % params.pvec);
    finish();
  }
}

// One division for the first parameter index, then a wrapping increment.
@compute @workgroup_size(256)
fn main_loop(@builtin(global_invocation_id) gid: vec3<u32>) {
  let first = (gid.x + gid.y * params.stride) * VEC4S;
  var p = first % params.pvec;
  for (var k = 0u; k < VEC4S; k++) {
    if (first + k < params.n) {
      part(first + k, p);
    }
    p = select(p + 1u, 0u, p + 1u == params.pvec);
  }
  finish();
}
`;

const VEC4_COPY = /* wgsl */ `${SHAPES}
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

fn part(i: u32, p: u32) {
  dst[i] = src[i];
}

fn finish() {}
`;

// The sum and sum of squares a statistics pass keeps; the store behind the run-time flag
// (always 0) keeps the loads alive without writing anything.
const VEC4_READ = /* wgsl */ `${SHAPES}
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<vec4<f32>, 2>;

var<private> sum: vec4<f32>;
var<private> squares: vec4<f32>;

fn part(i: u32, p: u32) {
  let v = src[i];
  sum += v;
  squares += v * v;
}

fn finish() {
  if (params.flag != 0u) {
    sink[0] = sum;
    sink[1] = squares;
  }
}
`;

const VEC4_SCALE = /* wgsl */ `${SHAPES}
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;

fn part(i: u32, p: u32) {
  dst[i] = src[i] * weight[p];
}

fn finish() {}
`;

const VEC4_AFFINE = /* wgsl */ `${SHAPES}
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;

fn part(i: u32, p: u32) {
  dst[i] = src[i] * weight[p] + bias[p];
}

fn finish() {}
`;

const KERNELS: Record<FloorPart, string> = { copy: VEC4_COPY, read: VEC4_READ, scale: VEC4_SCALE, affine: VEC4_AFFINE };
const FLOOR_PARTS = Object.keys(KERNELS) as FloorPart[];
const SHAPE_VEC4S: Record<KernelShape, number> = { one: 1, loop: LOOP_VEC4S };
const ENTRY: Record<KernelShape, string> = { one: 'main', loop: 'main_loop' };

export interface CeilingResult {
  numel: number;
  /** Bytes of one read and one write of numel floats. */
  bytes: number;
  /** Median ms of copyBufferToBuffer of numel * 4 bytes. */
  copyMs: number;
  /** Median ms of the vec4 copy kernel over numel floats, one vec4 per invocation (the xvec4 reference). */
  vec4Ms: number;
  /** Median ms of the read-only vec4 pass, one vec4 per invocation (floors requested only). */
  readMs?: number;
  /** Median ms of y = x * w[i % P], one vec4 per invocation (floors requested only). */
  scaleMs?: number;
  /** Median ms of y = x * w[i % P] + b[i % P], one vec4 per invocation (floors requested only). */
  affineMs?: number;
  /** P, the length of w and b in the scale and affine kernels (floors requested only). */
  paramLength?: number;
  /** Median ms of each floor part with `loopVec4s` vec4s per invocation (floors requested; absent from older reports). */
  loopMs?: Record<FloorPart, number>;
  /** LOOP_VEC4S of the run (with loopMs). */
  loopVec4s?: number;
  /** Per floor part, the shape with the lower median, whose time the floor takes (with loopMs). */
  fastest?: Record<FloorPart, KernelShape>;
  method: 'timestamp' | 'wall';
}

/** A floor part's median with one vec4 per invocation; undefined when the report lacks it. */
export function oneShapeMs(c: CeilingResult, part: FloorPart): number | undefined {
  return part === 'copy' ? c.vec4Ms : c[`${part}Ms`];
}

/** A floor part's time as the floor takes it: the faster shape's (the one-vec4 shape in older reports). */
export function floorPartMs(c: CeilingResult, part: FloorPart): number | undefined {
  return c.fastest?.[part] === 'loop' ? c.loopMs?.[part] : oneShapeMs(c, part);
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipeline(device: GPUDevice, part: FloorPart, shape: KernelShape): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  const label = kernelLabel(part, shape);
  let p = cache.get(label);
  if (!p) {
    const module = device.createShaderModule({ label, code: KERNELS[part] });
    p = device.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: ENTRY[shape], ...(shape === 'loop' ? { constants: { VEC4S: LOOP_VEC4S } } : {}) } });
    cache.set(label, p);
  }
  return p;
}

const kernelLabel = (part: FloorPart, shape: KernelShape) => (shape === 'one' ? `bench:vec4-${part}` : `bench:vec4x${LOOP_VEC4S}-${part}`);

/**
 * Measure the ceilings for `numel` floats (numel % 4 == 0), `iterations` times each,
 * interleaved. With `floors`, also the read, scale and affine kernels, with w and b of
 * `floors.paramLength` floats (rounded down to whole vec4s, at least one: their count of
 * accesses, not their length, is what the floor is about), and every floor part (the copy
 * included) in the looped shape too. Default: the two copies only.
 */
export async function measureCeilings(timer: GpuTimer, numel: number, iterations = 10, floors?: { paramLength: number }): Promise<CeilingResult> {
  const device = timer.device;
  const bytes = numel * 4;
  const usage = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST;
  const buffers: GPUBuffer[] = [];
  const buffer = (size: number, label: string, u = usage) => {
    const b = device.createBuffer({ size, usage: u, label });
    buffers.push(b);
    return b;
  };
  const src = buffer(bytes, 'bench:ceiling-src');
  const dst = buffer(bytes, 'bench:ceiling-dst');
  const vecs = numel / 4;
  const pvec = Math.max(1, Math.floor((floors?.paramLength ?? 4) / 4));
  // Per shape: the 2-D grid of workgroups and the uniforms with its row stride.
  const grid = (shape: KernelShape) => {
    const groups = Math.ceil(vecs / (256 * SHAPE_VEC4S[shape]));
    const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = buffer(16, `bench:ceiling-params-${shape}`, Usage.UNIFORM | Usage.COPY_DST);
    device.queue.writeBuffer(uniform, 0, new Uint32Array([vecs, gx * 256, pvec, 0]));
    return { gx, gy: Math.ceil(groups / gx), uniform };
  };
  const grids = { one: grid('one'), loop: floors ? grid('loop') : undefined };

  const dispatch = (part: FloorPart, shape: KernelShape, bound: GPUBuffer[]) => {
    const p = pipeline(device, part, shape);
    const { gx, gy, uniform } = grids[shape]!;
    const label = kernelLabel(part, shape);
    const bindGroup = device.createBindGroup({
      label,
      layout: p.getBindGroupLayout(0),
      entries: [uniform, ...bound].map((b, binding) => ({ binding, resource: { buffer: b } })),
    });
    return () => {
      const e = device.createCommandEncoder({ label });
      const pass = e.beginComputePass({ label });
      pass.setPipeline(p);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
      pass.end();
      device.queue.submit([e.finish()]);
    };
  };
  // Keys: 'b2b', then `${part}/${shape}`.
  const runs: Record<string, () => void> = {
    b2b: () => {
      const e = device.createCommandEncoder({ label: 'bench:copy' });
      e.copyBufferToBuffer(src, 0, dst, 0, bytes);
      device.queue.submit([e.finish()]);
    },
    'copy/one': dispatch('copy', 'one', [src, dst]),
  };
  if (floors) {
    const weight = buffer(pvec * 16, 'bench:ceiling-weight');
    const bias = buffer(pvec * 16, 'bench:ceiling-bias');
    const sink = buffer(32, 'bench:ceiling-sink');
    const bound: Record<FloorPart, GPUBuffer[]> = { copy: [src, dst], read: [src, sink], scale: [src, dst, weight], affine: [src, dst, weight, bias] };
    // Every part in both shapes; the one-vec4 copy is there already.
    for (const part of FLOOR_PARTS) {
      for (const shape of ['one', 'loop'] as const) runs[`${part}/${shape}`] ??= dispatch(part, shape, bound[part]);
    }
  }
  try {
    // Warm-up: first touches of the buffers and pipeline creation.
    for (const run of Object.values(runs)) await timer.time(run);
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
    let method: 'timestamp' | 'wall' = 'timestamp';
    for (let i = 0; i < iterations; i++) {
      for (const [key, run] of Object.entries(runs)) {
        const t = await timer.time(run);
        samples[key].push(t.ms);
        if (t.method === 'wall') method = 'wall';
      }
    }
    const ms = (key: string) => median(samples[key]);
    const result: CeilingResult = { numel, bytes: bytes * 2, copyMs: ms('b2b'), vec4Ms: ms('copy/one'), method };
    if (floors) {
      const perPart = <T>(f: (part: FloorPart) => T) => Object.fromEntries(FLOOR_PARTS.map((part) => [part, f(part)])) as Record<FloorPart, T>;
      const loopMs = perPart((part) => ms(`${part}/loop`));
      Object.assign(result, {
        readMs: ms('read/one'), scaleMs: ms('scale/one'), affineMs: ms('affine/one'), paramLength: pvec * 4,
        loopMs, loopVec4s: LOOP_VEC4S, fastest: perPart((part) => (loopMs[part] < ms(`${part}/one`) ? 'loop' : 'one')),
      });
    }
    return result;
  } finally {
    for (const b of buffers) b.destroy();
  }
}
