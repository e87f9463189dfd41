// Elementwise: out = x + residual (RESIDUAL), or out = x converted between dtypes.
//
// The staged path's first stage when a normalization has a residual: it reads x and the
// residual once and writes their sum h once; the statistics and apply stages then read h. (The
// fused kernels, normalize_serial and normalize_rows, write the sum themselves.) The sum is
// a float32 add rounded to the input dtype, as PyTorch adds float16 tensors. Without RESIDUAL it
// rounds float32 results to float16 (moments and preprocess outputs of dtype float16).
//
// Types come from epilogue.wgsl (linked first): x and the residual are X_HALF, the output
// Y_HALF. Invocation t writes output word t: one float32, or two halves, so no two invocations
// store into one word; the padding half of an odd count is 0.

override WG: u32 = 256;
override RESIDUAL: bool = true;

struct Params {
  count: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> residual: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn load(words: u32, i: u32) -> f32 {
  if (X_HALF) { return halfAt(words, i); }
  return bitcast<f32>(words);
}

fn element(i: u32) -> f32 {
  let w = select(i, i >> 1u, X_HALF);
  var v = load(x[w], i);
  if (RESIDUAL) { v += load(residual[w], i); }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (!Y_HALF) {
    if (t < params.count) { out[t] = bitcast<u32>(element(t)); }
    return;
  }
  let i = 2u * t;
  if (i >= params.count) { return; }
  var hi = 0.0;
  if (i + 1u < params.count) { hi = element(i + 1u); }
  out[t] = packHalves(element(i), hi);
}
