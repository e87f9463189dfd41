// Column statistics, stage 1: (n, mean, M2, shift) and (min, max) of each column, chunk by chunk.
//
// The input is viewed as a row-major matrix [R, W] of R samples by W columns: for dataset
// statistics a row is one image (W = C*H*W values, a column is one pixel of one channel), for
// the feature scalers a row is one sample (W = features). Invocation (w, j) folds rows
// [j*K, min((j+1)*K, R)) of column w with Welford's update (welford.wgsl) and tracks the min
// and max; columns stride along x, chunks span y and z. Neighbouring invocations read
// neighbouring floats of a row, so loads coalesce; the chunk length K (a planning choice)
// bounds the serial Welford run and with it the float32 rounding, and the chunks' partials
// are merged by merge_stats.wgsl in a tree.
//
// Every chunk of a column is shifted by the column's first value x[0, w]: all partials of a
// column share one reference, and for data such as 1e4 + N(0, 1) the deviations x - shift are
// exact in float32, so nothing is lost to the offset. `mean` is relative to the shift.
// Output: stats[j * W + w] = (n, mean, M2, shift), ranges[j * W + w] = (min, max).
//
// With SKIP_NAN (the feature scalers, as scikit-learn) NaN values are left out: n counts a
// column's other values, and a chunk without any is an empty partial (n = 0), which
// merge_stats.wgsl and the host merge skip. Where the column's first value is NaN, each chunk
// is shifted by its own first value instead (merges rebase means across shifts).

override WG: u32 = 64;
override SKIP_NAN: bool = false;

struct Params {
  rows: u32,
  width: u32,
  rowsPerChunk: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ranges: array<vec2<f32>>;

// A bit test, which survives compilers that assume finite floats (`v != v` may not).
fn isNan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let j = wid.y + wid.z * nwg.y;
  if (j >= params.chunks) { return; }
  let width = params.width;
  let start = j * params.rowsPerChunk;
  let end = min(start + params.rowsPerChunk, params.rows);
  for (var w = gid.x; w < width; w += nwg.x * WG) {
    var shift = groupShift(x[w]);
    let ownShift = SKIP_NAN && isNan(x[w]);
    var acc = Moments(0.0, 0.0, 0.0);
    var lo = 0.0;
    var hi = 0.0;
    for (var r = start; r < end; r++) {
      let v = x[r * width + w];
      if (SKIP_NAN && isNan(v)) { continue; }
      if (acc.n == 0.0) {
        lo = v;
        hi = v;
        if (ownShift) { shift = groupShift(v); }
      }
      acc = welfordPush(acc, v - shift);
      lo = min(lo, v);
      hi = max(hi, v);
    }
    stats[j * width + w] = vec4<f32>(acc.n, acc.mean, acc.m2, shift);
    ranges[j * width + w] = vec2<f32>(lo, hi);
  }
}
