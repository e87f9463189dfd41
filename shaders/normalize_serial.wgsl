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
// a CPU adapter turns each lane's scalar load into a separate gather, so this quarters them;
// their statistics sum blocks of samples (welford.wgsl's `quadBlock`) instead of a Welford
// division per sample.
// `main_vec4_spans` serves affine spans of 4k elements (BatchNorm/InstanceNorm/GroupNorm
// channels-first), `main_vec4_features` per-element affine (LayerNorm, RMSNorm, GroupNorm
// channels-last).
//
// Epilogues (epilogue.wgsl, linked first): every entry applies ACTIVATION after the affine and
// takes RESIDUAL: it first writes the group's h = x + residual to `sum` (the sum's only write;
// the residual's only read), then takes the statistics of, and normalizes, h read back from
// `sum`: by then in the invocation's cache. The scalar `main` also takes float16 inputs
// (X_HALF) and outputs (Y_HALF); the vec4 entries are float32 only. Halves are written a word
// (two elements) at a time, so the planner uses this kernel for float16 only where every run S
// is even (no word is shared by two groups).

override WG: u32 = 64;
override MODE: u32 = 0;
override UPDATE_RUNNING: bool = false;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;
override RESIDUAL: bool = false;

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
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(6) var<storage, read_write> runningVar: array<f32>;
@group(0) @binding(7) var<storage, read> residual: array<u32>;
@group(0) @binding(8) var<storage, read_write> sum: array<u32>;
// The scalar entry writes words: float32 bits, or two halves.
@group(0) @binding(4) var<storage, read_write> yw: array<u32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> residual4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> sum4: array<vec4<f32>>;

// The vec4 entries' source: x, or with RESIDUAL the sum written by `writeSum4`.
fn src4(j: u32) -> vec4<f32> {
  if (RESIDUAL) { return sum4[j]; }
  return x4[j];
}

fn writeSum4(base4: u32) {
  let qs4 = params.q * params.s / 4u;
  for (var p = 0u; p < params.p; p++) {
    let row = base4 + p * qs4;
    for (var s = 0u; s < params.s / 4u; s++) {
      sum4[row + s] = x4[row + s] + residual4[row + s];
    }
  }
}

fn decode(word: u32, i: u32) -> f32 {
  if (X_HALF) { return halfAt(word, i); }
  return bitcast<f32>(word);
}

fn wordOf(i: u32) -> u32 {
  return select(i, i >> 1u, X_HALF);
}

// Element i of what is normalized: x, or with RESIDUAL the sum written by `writeSum`.
fn src(i: u32) -> f32 {
  if (RESIDUAL) { return decode(sum[wordOf(i)], i); }
  return decode(x[wordOf(i)], i);
}

// Elements i and i + 1 (i even) of what is normalized, float16 only: one word, one unpack.
fn src2(i: u32) -> vec2<f32> {
  if (RESIDUAL) { return unpack2x16float(sum[i >> 1u]); }
  return unpack2x16float(x[i >> 1u]);
}

fn added(i: u32) -> f32 {
  return decode(x[wordOf(i)], i) + decode(residual[wordOf(i)], i);
}

// sum = x + residual over the group's runs (even lengths for halves: whole words).
fn writeSum(base: u32) {
  let qs = params.q * params.s;
  for (var p = 0u; p < params.p; p++) {
    let row = base + p * qs;
    if (X_HALF) {
      for (var s = 0u; s < params.s; s += 2u) {
        sum[(row + s) >> 1u] = packHalves(added(row + s), added(row + s + 1u));
      }
    } else {
      for (var s = 0u; s < params.s; s++) {
        sum[row + s] = bitcast<u32>(added(row + s));
      }
    }
  }
}

// Output element at view offset s of group q with affine f.
fn output(f: vec4<f32>, q: u32, s: u32, v: f32) -> f32 {
  // paramS is 1 for per-element affines (LayerNorm, RMSNorm): no division there.
  var k = q * params.paramQ + s;
  if (params.paramS != 1u) { k = q * params.paramQ + s / params.paramS; }
  var a = f.z;
  var b = 0.0;
  if (HAS_WEIGHT) { a *= weight[k]; }
  if (HAS_BIAS) { b = bias[k]; }
  return activate(((v * f.w - f.x) - f.y) * a + b);
}

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
      if (X_HALF) {
        // Runs are whole words here (the planner's condition for halves).
        for (var s = 0u; s < params.s; s += 2u) {
          let v = src2(row + s) * unit;
          acc = blockedPush(blockedPush(acc, v.x, sh), v.y, sh);
        }
      } else {
        for (var s = 0u; s < params.s; s++) {
          acc = blockedPush(acc, src(row + s) * unit, sh);
        }
      }
    }
    let total = blockedTotal(acc);
    let next = rescueUnit(total, shift);
    if (unit != 1.0 || next == 1.0) { return Stats(total, sh, unit); }
    unit = next;
  }
}

// The same for the vec4 entries; `base4` is the group's first vec4 (quad_stats.wgsl).
fn groupStats4(base4: u32, shift: f32) -> Stats {
  let s4 = params.s / 4u;
  return quadStats(base4, 0u, params.p * s4, s4, params.q * params.s / 4u, shift);
}

fn quadAt(i: u32) -> vec4<f32> {
  return src4(i);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let q = g % params.q;
  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + q * params.s;
  if (RESIDUAL) { writeSum(base); }
  let f = groupAffine(g, groupStats(base, groupShift(src(base))));

  if (Y_HALF) {
    for (var p = 0u; p < params.p; p++) {
      let row = base + p * qs;
      for (var s = 0u; s < params.s; s += 2u) {
        var v = vec2<f32>(src(row + s), src(row + s + 1u));
        if (X_HALF) { v = src2(row + s); }
        yw[(row + s) >> 1u] = packHalves(output(f, q, s, v.x), output(f, q, s + 1u, v.y));
      }
    }
    return;
  }
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
        yw[i] = bitcast<u32>(activate(((src(i) * f.w - f.x) - f.y) * a + b));
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
  if (RESIDUAL) { writeSum4(base4); }
  let f = groupAffine(g, groupStats4(base4, groupShift(src4(base4).x)));

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
        y4[i] = activate4(((src4(i) * f.w - f.x) - f.y) * a + b);
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
  if (RESIDUAL) { writeSum4(base4); }
  let f = groupAffine(g, groupStats4(base4, groupShift(src4(base4).x)));

  // paramS is 1 here: the affine index of element s is q * paramQ + s, a multiple of 4 at s = 0.
  let k4 = q * params.paramQ / 4u;
  for (var p = 0u; p < params.p; p++) {
    let row = base4 + p * qs4;
    for (var s = 0u; s < params.s / 4u; s++) {
      var a = vec4<f32>(f.z);
      var b = vec4<f32>(0.0);
      if (HAS_WEIGHT) { a *= weight4[k4 + s]; }
      if (HAS_BIAS) { b = bias4[k4 + s]; }
      y4[row + s] = activate4(((src4(row + s) * f.w - f.x) - f.y) * a + b);
    }
  }
}
