// Stage 1 (serial): one invocation folds a whole group, for software adapters.
//
// A CPU-backed adapter such as SwiftShader runs invocations as SIMD lanes of a few threads:
// long serial loops with no barriers beat cooperating workgroups there (see FACTS.md). Each
// invocation owns group g of the [O, P, Q, S] view and Welford-accumulates its P*S elements in
// memory order. Neighbouring invocations own neighbouring groups, so for channels-last views
// (S small) the lanes of one SIMD step read neighbouring floats.
// Output: partials[g] = (n, mean, M2, shift), one partial per group.

override WG: u32 = 64;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + (g % params.q) * params.s;
  let shift = select(x[base], 0.0, SQUARE);
  var acc = Moments(0.0, 0.0, 0.0);
  for (var p = 0u; p < params.p; p++) {
    let row = base + p * qs;
    for (var s = 0u; s < params.s; s++) {
      acc = pushSample(acc, x[row + s], shift);
    }
  }
  partials[g] = vec4<f32>(acc.n, acc.mean, acc.m2, shift);
}
