// Stage 3: the fused elementwise normalize, y = ((x - shift) - mean) * (rstd * weight) + bias.
//
// Element i of the [O, P, Q, S] view belongs to statistics group (i / (P*Q*S)) * Q + (i / S) % Q
// and takes its affine parameters from index (i / paramDiv) % paramMod: per channel for
// BatchNorm/InstanceNorm/GroupNorm, per element of normalized_shape for LayerNorm/RMSNorm.
// Subtracting the group mean as the pair (shift, mean) keeps large offsets exact; the
// multiply-add then lands the result. `main_vec4` moves four floats per access where the
// element count allows; `main` is the scalar twin. Both stride over the whole tensor, so the
// dispatch never exceeds the per-dimension workgroup limit.

override WG: u32 = 256;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;

struct Params {
  q: u32,
  s: u32,
  groupStride: u32,
  paramDiv: u32,
  paramMod: u32,
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;

fn normalizeAt(i: u32, v: f32) -> f32 {
  let st = stats[(i / params.groupStride) * params.q + (i / params.s) % params.q];
  let k = (i / params.paramDiv) % params.paramMod;
  var a = st.z;
  var b = 0.0;
  if (HAS_WEIGHT) { a *= weight[k]; }
  if (HAS_BIAS) { b = bias[k]; }
  return ((v - st.x) - st.y) * a + b;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < params.count; i += nwg.x * WG) {
    y[i] = normalizeAt(i, x[i]);
  }
}

@compute @workgroup_size(WG)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < params.count / 4u; i += nwg.x * WG) {
    let v = x4[i];
    let e = i * 4u;
    y4[i] = vec4<f32>(
      normalizeAt(e, v.x),
      normalizeAt(e + 1u, v.y),
      normalizeAt(e + 2u, v.z),
      normalizeAt(e + 3u, v.w),
    );
  }
}
