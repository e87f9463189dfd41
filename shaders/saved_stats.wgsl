// Backward stage 0: the per-group statistics a forward saves for its backward, as
// torch.native_*_norm returns them: float32 mean and rstd = 1 / sqrt(variance + eps).
//
// One invocation per statistics group. The inputs are the group's mean and biased variance
// (finalize_stats in mode `moments` with correction 0), or, for BatchNorm inference, the
// running mean and variance. MODE:
//   0 batch    mean, 1 / sqrt(var + eps)
//   1 running  the same, of the running statistics
//   2 rms      mean 0, 1 / sqrt(mean(x^2) + eps) with mean(x^2) = var + mean^2: a sum of two
//              non-negative terms, so nothing cancels.

override WG: u32 = 64;
override MODE: u32 = 0;

struct Params {
  groups: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> meanIn: array<f32>;
@group(0) @binding(2) var<storage, read> varIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstdOut: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.groups) { return; }
  let m = meanIn[g];
  let v = varIn[g];
  if (MODE == 2u) {
    meanOut[g] = 0.0;
    rstdOut[g] = 1.0 / sqrt(v + m * m + params.eps);
  } else {
    meanOut[g] = m;
    rstdOut[g] = 1.0 / sqrt(v + params.eps);
  }
}
