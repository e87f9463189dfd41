// Stage 2: merge each group's partials and fold them into the numbers the apply stage needs.
//
// One invocation per statistics group (o, q). Its partials sit at
// partials[((o * R1 + r1) * Q + q) * R2 + r2] for r1 < R1, r2 < R2, which covers every stage-1
// variant: rows (R1 = 1, R2 = chunks), columns (R1 = row chunks, R2 = S), serial (1, 1).
// They are Chan-merged in order, in this separate dispatch, because WebGPU gives no guarantee
// that one workgroup can wait for another. Partials may carry different shifts (samples of the
// same group): each mean is rebased onto the first partial's shift, a difference on the scale
// of the group's spread, so the pair (shift, mean) stays exact to float32 of the spread.
//
// MODE selects what is made of the merged (shift, mean, M2) of count n:
//   0 batch    stats[g] = (shift, mean, 1/sqrt(M2/n + eps));  UPDATE_RUNNING also applies
//              PyTorch's running update: r = (1 - momentum) * r + momentum * batch, with the
//              unbiased variance M2/(n - 1) for the running variance.
//   1 running  stats[g] = (runningMean[g], 0, 1/sqrt(runningVar[g] + eps)): inference, no partials.
//   2 rms      stats[g] = (0, 0, 1/sqrt(mean(x^2) + eps)); stage 1 ran with SQUARE, so the
//              merged mean is mean(x^2) itself.
//   3 moments  channelMean[g] = shift + mean, channelVar[g] = M2 / (n - correction).
// The apply stage computes ((x - stats.x) - stats.y) * stats.z, so the group mean is carried as
// a float pair (shift, mean) and never rounded to one float32 before the subtraction.

override WG: u32 = 64;
override MODE: u32 = 0;
override UPDATE_RUNNING: bool = false;

struct Params {
  o: u32,
  q: u32,
  r1: u32,
  r2: u32,
  count: f32,
  eps: f32,
  momentum: f32,
  correction: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> channelMean: array<f32>;
@group(0) @binding(4) var<storage, read_write> channelVar: array<f32>;

// A constant NaN is a WGSL compile error, so this one depends on a uniform (and is always NaN).
fn nan() -> f32 {
  return bitcast<f32>(0x7fc00000u | (params.o & 0u));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }

  if (MODE == 1u) {
    stats[g] = vec4<f32>(channelMean[g], 0.0, 1.0 / sqrt(channelVar[g] + params.eps), 0.0);
    return;
  }

  let o = g / params.q;
  let q = g % params.q;
  var acc = Moments(0.0, 0.0, 0.0);
  let shift = partials[(o * params.r1 * params.q + q) * params.r2].w;
  for (var r1 = 0u; r1 < params.r1; r1++) {
    for (var r2 = 0u; r2 < params.r2; r2++) {
      let part = partials[((o * params.r1 + r1) * params.q + q) * params.r2 + r2];
      acc = chanMerge(acc, Moments(part.x, (part.w - shift) + part.y, part.z));
    }
  }
  let n = params.count;

  switch MODE {
    case 0u: {
      stats[g] = vec4<f32>(shift, acc.mean, 1.0 / sqrt(acc.m2 / n + params.eps), 0.0);
      if (UPDATE_RUNNING) {
        let m = params.momentum;
        channelMean[g] = (1.0 - m) * channelMean[g] + m * (shift + acc.mean);
        channelVar[g] = (1.0 - m) * channelVar[g] + m * (acc.m2 / (n - 1.0));
      }
    }
    case 2u: {
      stats[g] = vec4<f32>(0.0, 0.0, 1.0 / sqrt(acc.mean + params.eps), 0.0);
    }
    default: {
      channelMean[g] = shift + acc.mean;
      let dof = n - params.correction;
      channelVar[g] = select(nan(), acc.m2 / dof, dof > 0.0);
    }
  }
}
