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
// Partials come in units (welford.wgsl's `partialOf`): plain, or from a rescue pass in RESCUE
// or TINY_UNIT. The merge runs in plain units, exactly as when every partial is plain; where
// that merge is not finite (overflow, or non-finite samples) it runs again in RESCUE units,
// and where it leaves a variance below 2^-100 while some partial was rescued as tiny, again in
// TINY_UNIT. Means of squares (MODE 2, SQUARE) take the same path, in unit^2.
//
// MODE selects what is made of the merged statistics of count n (welford.wgsl's normAffine:
// stats[g] = (shift, mean, a, k), y = ((x * k - shift) - mean) * a with a = rstd / k, k = 1
// unless the statistics were rescued):
//   0 batch    a from M2; UPDATE_RUNNING also applies PyTorch's running
//              update: r = (1 - momentum) * r + momentum * batch, with the unbiased variance
//              M2/(n - 1) for the running variance.
//   1 running  stats[g] = (runningMean[g], 0, 1/sqrt(runningVar[g] + eps), 1): inference, no partials.
//   2 rms      stats[g] = (0, 0, a, k) for rstd = 1/sqrt(mean(x^2) + eps); stage 1 ran
//              with SQUARE, so the merged mean is mean(x^2) itself.
//   3 moments  channelMean[g] = shift + mean, channelVar[g] = M2 / (n - correction).
// The apply stage computes ((x * k - stats.x) - stats.y) * stats.z, so the group mean is carried
// as a float pair (shift, mean) and never rounded to one float32 before the subtraction.

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

// Partial statistics `s` in `unit` (welford.wgsl's Stats): the mean relative to `origin`, the
// group's reference shift in that unit, and M2 (for SQUARE the mean of squares) in unit^2.
// Partials in the unit keep their numbers as they are (all plain: exactly the merge of plain
// statistics).
fn inUnit(s: Stats, unit: f32, origin: f32) -> Moments {
  if (s.unit == unit) { return Moments(s.m.n, (s.shift - origin) + s.m.mean, s.m.m2); }
  let k = unitExp(unit) - unitExp(s.unit);
  if (SQUARE) { return Moments(s.m.n, ldexpExact(s.m.mean, 2 * k), 0.0); }
  return Moments(s.m.n, (ldexpExact(s.shift, k) - origin) + ldexpExact(s.m.mean, k), ldexpExact(s.m.m2, 2 * k));
}

// The partials of group (o, q) merged in `unit`, relative to the first partial's shift.
fn mergeIn(o: u32, q: u32, unit: f32, first: Stats) -> Stats {
  let origin = ldexpExact(first.shift, unitExp(unit) - unitExp(first.unit));
  var acc = NO_MOMENTS;
  for (var r1 = 0u; r1 < params.r1; r1++) {
    for (var r2 = 0u; r2 < params.r2; r2++) {
      let s = statsOf(partials[((o * params.r1 + r1) * params.q + q) * params.r2 + r2]);
      acc = chanMerge(acc, inUnit(s, unit, origin));
    }
  }
  return Stats(acc, origin, unit);
}

// Whether any partial of group (o, q) was rescued in TINY_UNIT.
fn anyTiny(o: u32, q: u32) -> bool {
  for (var r1 = 0u; r1 < params.r1; r1++) {
    for (var r2 = 0u; r2 < params.r2; r2++) {
      if (statsOf(partials[((o * params.r1 + r1) * params.q + q) * params.r2 + r2]).unit == TINY_UNIT) { return true; }
    }
  }
  return false;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }

  if (MODE == 1u) {
    stats[g] = vec4<f32>(channelMean[g], 0.0, 1.0 / sqrt(channelVar[g] + params.eps), 1.0);
    return;
  }

  let o = g / params.q;
  let q = g % params.q;
  let first = statsOf(partials[(o * params.r1 * params.q + q) * params.r2]);
  var st = mergeIn(o, q, 1.0, first);
  if (!statsFinite(st.m)) {
    st = mergeIn(o, q, RESCUE, first);
  } else if (statsTiny(st.m) && anyTiny(o, q)) {
    st = mergeIn(o, q, TINY_UNIT, first);
  }
  let n = params.count;

  switch MODE {
    case 0u, 2u: {
      stats[g] = normAffine(st, n, params.eps);
      if (MODE == 0u && UPDATE_RUNNING) {
        let m = params.momentum;
        let batch = plainMoments(st, n - 1.0);
        channelMean[g] = (1.0 - m) * channelMean[g] + m * batch.x;
        channelVar[g] = (1.0 - m) * channelVar[g] + m * batch.y;
      }
    }
    default: {
      let dof = n - params.correction;
      let moments = plainMoments(st, dof);
      channelMean[g] = moments.x;
      channelVar[g] = select(nan(), moments.y, dof > 0.0);
    }
  }
}
