// Backward helpers linked before merge_grad, apply_grad and grad_serial: Kahan sums,
// the per-group dx table and the dx formula (src/plan/grad.ts has the math). A module that
// links this file declares MODE: 0 batch, 1 running (BatchNorm inference), 2 rms.

// A Kahan sum: (sum, compensation) of up to four running totals (three quantities of one
// group, or one quantity of four lanes).
struct Sums {
  s: vec4<f32>,
  c: vec4<f32>,
}

const NO_SUMS = Sums(vec4<f32>(0.0), vec4<f32>(0.0));

// Once a total is infinite its compensation would be inf - inf = NaN: it is dropped there, so
// infinities add up as in a plain sum.
fn kahan(a: Sums, v: vec4<f32>) -> Sums {
  let y = v - a.c;
  let t = a.s + y;
  let finite = (bitcast<vec4<u32>>(t) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u);
  return Sums(t, select(vec4<f32>(0.0), (t - a.s) - y, finite));
}

// The table entries of four groups (one per lane), as gradTable makes them.
struct LaneTable {
  m: vec4<f32>,
  corr: vec4<f32>,
  s: vec4<f32>,
  meanG: vec4<f32>,
  meanGX: vec4<f32>,
}

// The table of four groups of n elements each from their sums A = Σ g, B' = Σ g * d, D = Σ d,
// d = x - m with m the saved mean and s its rstd. The exact centre is m + D / n (MODE batch):
// with corr = D / n, Σ g * (x - centre) = B' - corr * A, and x̂ = ((x - m) - corr) * s.
fn laneTable(a: vec4<f32>, b: vec4<f32>, d: vec4<f32>, n: f32, m: vec4<f32>, s: vec4<f32>) -> LaneTable {
  let zero = vec4<f32>(0.0);
  var t = LaneTable(zero, zero, s, zero, zero);
  if (MODE != 2u) { t.m = m; }
  if (MODE == 0u) {
    t.corr = d / n;
    t.meanG = a / n;
  }
  if (MODE != 1u) { t.meanGX = s * (b - t.corr * a) / n; }
  return t;
}

// The two table entries of one group from its sums (A, B', D) (laneTable):
//   [0] = (m, corr, s, 0)               x̂ = ((x - m) - corr) * s
//   [1] = (mean(g), mean(g * x̂), 0, 0)
fn gradTable(sums: vec3<f32>, n: f32, m: f32, s: f32) -> array<vec4<f32>, 2> {
  let t = laneTable(vec4<f32>(sums.x), vec4<f32>(sums.y), vec4<f32>(sums.z), n, vec4<f32>(m), vec4<f32>(s));
  return array<vec4<f32>, 2>(vec4<f32>(t.m.x, t.corr.x, t.s.x, 0.0), vec4<f32>(t.meanG.x, t.meanGX.x, 0.0, 0.0));
}

// The table entries t, u of one group spread over four lanes.
fn splatTable(t: vec4<f32>, u: vec4<f32>) -> LaneTable {
  return LaneTable(vec4<f32>(t.x), vec4<f32>(t.y), vec4<f32>(t.z), vec4<f32>(u.x), vec4<f32>(u.y));
}

// x̂ of four elements, each of the group of its lane.
fn xhatOf4(x: vec4<f32>, t: LaneTable) -> vec4<f32> {
  return ((x - t.m) - t.corr) * t.s;
}

// dx of one element with upstream gradient dy, weight w (1 when absent) and input x, from its
// group's table entries t and u:
//   batch    rstd * ((g - mean(g)) - x̂ * mean(g * x̂)), g = dy * w
//   rms      the same with mean = corr = mean(g) = 0
//   running  g * rstd (no dependence on x, so NaN in x stays out)
// g - mean(g) is rounded once where fma is fused (GPUs): where they nearly cancel (constant
// groups, whose rstd is 1/sqrt(eps)), the rounding of g alone would be amplified by rstd.
fn dxOf(dy: f32, w: f32, x: f32, t: vec4<f32>, u: vec4<f32>) -> f32 {
  if (MODE == 1u) { return dy * w * t.z; }
  let xh = ((x - t.x) - t.y) * t.z;
  return t.z * fma(-xh, u.y, fma(dy, w, -u.x));
}

// dxOf on four elements, each of the group of its lane.
fn dxOfLanes(dy: vec4<f32>, w: vec4<f32>, x: vec4<f32>, t: LaneTable) -> vec4<f32> {
  if (MODE == 1u) { return dy * w * t.s; }
  return t.s * fma(-xhatOf4(x, t), t.meanGX, fma(dy, w, -t.meanG));
}
