// Elementwise y = alpha * a + beta * b over `count` float32 elements: gradient accumulation
// into `.grad`, SGD steps and running-statistics blends of the modules.
//
// b is optional: without HAS_B, y = alpha * a and b is never read. With IN_PLACE, b is y's own
// buffer (y = alpha * a + beta * y, the accumulation `.grad += delta`, which allocates
// nothing); the binding `b` is then unused. a never aliases y: WebGPU forbids binding one
// buffer both read-only and read-write in a dispatch, and the host checks it.
//
// Each element is computed once in float32: alpha * a and beta * b round once each and their
// sum once more, so a result is within 1.5 ulp of max(|alpha a|, |beta b|) of the exact one
// (alpha and beta travel as float32 in the uniform). NaN and infinities propagate as IEEE
// arithmetic says (0 * inf is NaN); alpha = 1 and beta = 1 give the correctly rounded a + b.
//
// `main_vec4` moves four floats per access when count % 4 == 0; `main` is the scalar form for
// any count. Invocation t handles unit t (an element, or a vec4) of a linear grid folded into y
// when the units exceed maxComputeWorkgroupsPerDimension * WG.

override WG: u32 = 256;
override HAS_B: bool = true;
override IN_PLACE: bool = false;

struct Params {
  count: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

fn unit(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = unit(gid, nwg);
  if (i >= params.count) { return; }
  var v = params.alpha * a[i];
  if (IN_PLACE) {
    v += params.beta * y[i];
  } else if (HAS_B) {
    v += params.beta * b[i];
  }
  y[i] = v;
}

@compute @workgroup_size(WG)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = unit(gid, nwg);
  if (i >= params.count / 4u) { return; }
  var v = params.alpha * a4[i];
  if (IN_PLACE) {
    v += params.beta * y4[i];
  } else if (HAS_B) {
    v += params.beta * b4[i];
  }
  y4[i] = v;
}
