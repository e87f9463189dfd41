// All three stages in one pass, one workgroup per statistics group held in registers: GPUs.
//
// For contiguous groups (LayerNorm rows; InstanceNorm and GroupNorm channels-first) of at most
// WG * 4 * K floats, each invocation loads up to K vec4s of its group into registers, folds
// them with Welford (shifted by the group's first element), and `workgroupMerge` (subgroup or
// workgroup-memory variant, linked from merge_*.wgsl) combines the invocations. Invocation 0
// publishes the affine (shift, mean, a, k) through workgroup memory, and every invocation
// normalizes the values it still holds: y = ((x * k - shift) - mean) * a * weight + bias. The
// input is read once and the output written once: the traffic of a copy.
//
// A group whose plain statistics fail (welford.wgsl's `rescueUnit`: overflow, non-finite
// samples, or with RESCUE_TINY underflow) is re-read by invocation 0 alone before it
// publishes, in the rescue's unit (then k): no barrier is added, and only such groups pay.
//
// The affine index of element e of group (o, q) is q * paramQ + e / paramS, as in
// normalize_serial.wgsl: `main_spans` serves paramS % 4 == 0 (one index per vec4), and
// `main_features` paramS == 1 (LayerNorm: weight and bias read as vec4s).
//
// Epilogues (epilogue.wgsl, linked first; float32 only): ACTIVATION is applied to each output,
// and with RESIDUAL the values loaded are h = x + residual, written to `sum` as they are loaded:
// x and the residual are read once, the sum written once, and h never read back (a rescue pass
// recomputes it, with the same float32 add).

override WG: u32 = 256;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;
override RESIDUAL: bool = false;
const K: u32 = 8u;

struct Params {
  groups: u32,
  q: u32,
  s: u32,
  paramQ: u32,
  paramS: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> residual4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> sum4: array<vec4<f32>>;

// The j-th vec4 normalized: x, or x + residual.
fn load4(j: u32) -> vec4<f32> {
  if (RESIDUAL) { return x4[j] + residual4[j]; }
  return x4[j];
}

var<workgroup> published: vec4<f32>;

// The statistics of a rescue pass in `unit` (welford.wgsl), by invocation 0 alone.
fn rescueGroup(base4: u32, shift: f32, unit: f32) -> Stats {
  let n4 = params.s / 4u;
  let sh = shift * unit;
  var m = NO_MOMENTS;
  for (var b = 0u; b < n4; b += RESCUE_BLOCK / 4u) {
    var block = NO_MOMENTS;
    for (var j = b; j < min(b + RESCUE_BLOCK / 4u, n4); j++) {
      block = push4(block, load4(base4 + j) * unit, sh);
    }
    m = chanMerge(m, block);
  }
  return Stats(m, sh, unit);
}

// Loads the group into `v`, merges its statistics and returns the affine (shift, mean, a, k) to all.
fn groupStats(base4: u32, lid: u32, v: ptr<function, array<vec4<f32>, K>>) -> vec4<f32> {
  let n4 = params.s / 4u;
  let shift = groupShift(load4(base4).x);
  var acc = NO_MOMENTS;
  for (var k = 0u; k < K; k++) {
    let j = lid + k * WG;
    if (j < n4) {
      (*v)[k] = load4(base4 + j);
      if (RESIDUAL) { sum4[base4 + j] = (*v)[k]; }
      acc = push4(acc, (*v)[k], shift);
    }
  }
  let total = workgroupMerge(acc, lid);
  if (lid == 0u) {
    let unit = rescueUnit(total, shift);
    var st = Stats(total, shift, 1.0);
    if (unit != 1.0) { st = rescueGroup(base4, shift, unit); }
    published = normAffine(st, f32(params.s), params.eps);
  }
  return workgroupUniformLoad(&published);
}

@compute @workgroup_size(WG)
fn main_spans(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= params.groups) { return; }
  let base4 = g * (params.s / 4u);
  var v: array<vec4<f32>, K>;
  let f = groupStats(base4, lid, &v);
  let q = g % params.q;
  for (var k = 0u; k < K; k++) {
    let j = lid + k * WG;
    if (j < params.s / 4u) {
      let p = q * params.paramQ + j * 4u / params.paramS;
      var a = f.z;
      var b = 0.0;
      if (HAS_WEIGHT) { a *= weight[p]; }
      if (HAS_BIAS) { b = bias[p]; }
      y4[base4 + j] = activate4(((v[k] * f.w - f.x) - f.y) * a + b);
    }
  }
}

@compute @workgroup_size(WG)
fn main_features(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= params.groups) { return; }
  let base4 = g * (params.s / 4u);
  var v: array<vec4<f32>, K>;
  let f = groupStats(base4, lid, &v);
  let p4 = (g % params.q) * params.paramQ / 4u;
  for (var k = 0u; k < K; k++) {
    let j = lid + k * WG;
    if (j < params.s / 4u) {
      var a = vec4<f32>(f.z);
      var b = vec4<f32>(0.0);
      if (HAS_WEIGHT) { a *= weight4[p4 + j]; }
      if (HAS_BIAS) { b = bias4[p4 + j]; }
      y4[base4 + j] = activate4(((v[k] * f.w - f.x) - f.y) * a + b);
    }
  }
}
