// All three stages fused, one invocation per statistics group: for software adapters.
//
// A CPU-backed adapter such as SwiftShader runs invocations as a few SIMD lanes per core; it
// rewards long serial loops and punishes barriers, idle lanes and extra passes (FACTS.md).
// Here invocation g owns group (o, q) of the [O, P, Q, S] view and makes two passes over its
// P*S elements: Welford statistics on samples shifted by the group's first element (the twin
// of reduce_stats + finalize_stats), then the affine write (the twin of apply_norm). The
// second pass usually hits the cache the first one filled. Neighbouring invocations own
// neighbouring groups, so in channels-last views the lanes of one SIMD step touch
// neighbouring floats.
//
// The affine index of element (o, p, q, s) is q * paramQ + s / paramS (BatchNorm and
// InstanceNorm: q; GroupNorm: q * C/G plus the channel within the group; LayerNorm: s); the
// loops are split at multiples of paramS so that no element needs a division.
// MODE 0 (batch) may also apply PyTorch's running-statistics update (group g is channel g
// for BatchNorm); MODE 2 (rms) accumulates x^2 (welford.wgsl's SQUARE).
// A group whose plain statistics fail (welford.wgsl's `rescueUnit`: overflow, non-finite
// samples, or with RESCUE_TINY underflow) takes one more pass, the rescue, before the affine
// one. The affine is y = ((x * k - shift) - mean) * a * weight + bias, a = rstd / k, with k = 1
// except for rescued groups.
//
// When runs are multiples of four floats the vec4 entry points read and write whole vec4s:
// a CPU adapter turns each lane's scalar load into a separate gather, so this quarters them.
// `main_vec4_spans` serves affine spans of 4k elements (BatchNorm/InstanceNorm/GroupNorm
// channels-first), `main_vec4_features` per-element affine (LayerNorm, RMSNorm, GroupNorm
// channels-last).

override WG: u32 = 64;
override MODE: u32 = 0;
override UPDATE_RUNNING: bool = false;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
  paramQ: u32,
  paramS: u32,
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(6) var<storage, read_write> runningVar: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;

// Group g's affine (shift, mean, a, k) from its statistics (welford.wgsl's normAffine); applies
// the running update where asked.
fn groupAffine(g: u32, s: Stats) -> vec4<f32> {
  let n = f32(params.p * params.s);
  if (MODE == 0u && UPDATE_RUNNING) {
    let m = params.momentum;
    let batch = plainMoments(s, n - 1.0);
    runningMean[g] = (1.0 - m) * runningMean[g] + m * batch.x;
    runningVar[g] = (1.0 - m) * runningVar[g] + m * batch.y;
  }
  return normAffine(s, n, params.eps);
}

// Statistics of the group at `base` (scalar entry). The plain pass runs with unit 1; where it
// fails, the same loop runs again as the rescue pass (one copy of the loop: a second one
// slows this kernel on software adapters more than the multiply by `unit` does).
fn groupStats(base: u32, shift: f32) -> Stats {
  let qs = params.q * params.s;
  var unit = 1.0;
  loop {
    let sh = shift * unit;
    var acc = NO_SAMPLES;
    for (var p = 0u; p < params.p; p++) {
      let row = base + p * qs;
      for (var s = 0u; s < params.s; s++) {
        acc = blockedPush(acc, x[row + s] * unit, sh);
      }
    }
    let total = blockedTotal(acc);
    let next = rescueUnit(total, shift);
    if (unit != 1.0 || next == 1.0) { return Stats(total, sh, unit); }
    unit = next;
  }
}

// The same for the vec4 entries; `base4` is the group's first vec4.
fn groupStats4(base4: u32, shift: f32) -> Stats {
  let qs4 = params.q * params.s / 4u;
  var unit = 1.0;
  loop {
    let sh = shift * unit;
    var acc = NO_SAMPLES;
    for (var p = 0u; p < params.p; p++) {
      let row = base4 + p * qs4;
      for (var s = 0u; s < params.s / 4u; s++) {
        acc = blockedPush4(acc, x4[row + s] * unit, sh);
      }
    }
    let total = blockedTotal(acc);
    let next = rescueUnit(total, shift);
    if (unit != 1.0 || next == 1.0) { return Stats(total, sh, unit); }
    unit = next;
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let q = g % params.q;
  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + q * params.s;
  let f = groupAffine(g, groupStats(base, groupShift(x[base])));

  let spans = params.s / params.paramS;
  for (var p = 0u; p < params.p; p++) {
    var i = base + p * qs;
    for (var h = 0u; h < spans; h++) {
      let k = q * params.paramQ + h;
      var a = f.z;
      var b = 0.0;
      if (HAS_WEIGHT) { a *= weight[k]; }
      if (HAS_BIAS) { b = bias[k]; }
      for (var s = 0u; s < params.paramS; s++) {
        y[i] = ((x[i] * f.w - f.x) - f.y) * a + b;
        i++;
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main_vec4_spans(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let q = g % params.q;
  let qs4 = params.q * params.s / 4u;
  let base4 = (g / params.q) * params.p * qs4 + q * params.s / 4u;
  let f = groupAffine(g, groupStats4(base4, groupShift(x4[base4].x)));

  let spans = params.s / params.paramS;
  for (var p = 0u; p < params.p; p++) {
    var i = base4 + p * qs4;
    for (var h = 0u; h < spans; h++) {
      let k = q * params.paramQ + h;
      var a = f.z;
      var b = 0.0;
      if (HAS_WEIGHT) { a *= weight[k]; }
      if (HAS_BIAS) { b = bias[k]; }
      for (var s = 0u; s < params.paramS / 4u; s++) {
        y4[i] = ((x4[i] * f.w - f.x) - f.y) * a + b;
        i++;
      }
    }
  }
}

@compute @workgroup_size(WG)
fn main_vec4_features(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let q = g % params.q;
  let qs4 = params.q * params.s / 4u;
  let base4 = (g / params.q) * params.p * qs4 + q * params.s / 4u;
  let f = groupAffine(g, groupStats4(base4, groupShift(x4[base4].x)));

  // paramS is 1 here: the affine index of element s is q * paramQ + s, a multiple of 4 at s = 0.
  let k4 = q * params.paramQ / 4u;
  for (var p = 0u; p < params.p; p++) {
    let row = base4 + p * qs4;
    for (var s = 0u; s < params.s / 4u; s++) {
      var a = vec4<f32>(f.z);
      var b = vec4<f32>(0.0);
      if (HAS_WEIGHT) { a *= weight4[k4 + s]; }
      if (HAS_BIAS) { b = bias4[k4 + s]; }
      y4[row + s] = ((x4[row + s] * f.w - f.x) - f.y) * a + b;
    }
  }
}
