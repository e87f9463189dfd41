// Feature scaling: the elementwise per-feature affine of the scalers, on [samples, features].
//
// Element i belongs to feature f = i % W and becomes y = ((x - a[f]) - b[f]) * m[f] + c[f],
// optionally clamped to [lo, hi] (CLIP, MinMaxScaler's `clip`). The host chooses (a, b, m, c):
//   StandardScaler.transform     a + b = mean as a float pair (b the float32 rounding residue
//                                of the float64 mean), m = 1 / scale, c = 0;
//   MinMaxScaler.transform       a = data min, b = 0, m = scale, c = range min: the same line
//                                as scikit-learn's x * scale + min_, but the subtraction comes
//                                first, where it is exact for values near the data;
//   inverseTransform             the inverse line of either.
// With the pair, x - a is exact for x near the mean (1e4-offset data lose nothing) and the one
// multiply-add lands the result. One invocation per element, striding over the whole tensor.

override WG: u32 = 256;
override CLIP: bool = false;

struct Params {
  count: u32,
  width: u32,
  lo: f32,
  hi: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> coeffs: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < params.count; i += nwg.x * WG) {
    let k = coeffs[i % params.width];
    var v = ((x[i] - k.x) - k.y) * k.z + k.w;
    // NaN stays NaN, as numpy's clip keeps it (WGSL's clamp of NaN may give either bound);
    // a bit test, since compilers may assume v == v.
    if (CLIP && (bitcast<u32>(v) & 0x7fffffffu) <= 0x7f800000u) {
      v = clamp(v, params.lo, params.hi);
    }
    y[i] = v;
  }
}
