// Stage 1 (parallel, contiguous runs): partial statistics of each group, chunk by chunk.
//
// The input is viewed as [O, P, Q, S]; a statistics group is one (o, q) pair and holds the
// P*S elements x[o, p, q, s]. Every normalization grouping is such a view: BatchNorm
// channels-first is [1, N, C, HW), LayerNorm [rows, 1, 1, D], GroupNorm channels-first
// [N, 1, G, C/G*HW], and so on. This variant suits views whose runs S are long: consecutive
// invocations read consecutive s, so loads coalesce.
//
// Workgroup (chunk c, group g) folds elements [c*chunkLen, (c+1)*chunkLen) of group g into one
// Moments with Welford per invocation, then `workgroupMerge` (subgroup or workgroup-memory
// variant, linked in from merge_*.wgsl) combines the invocations. A large group thus spreads
// over many workgroups; their partials are merged by finalize_stats in the next dispatch,
// never by waiting on another workgroup here.
//
// Samples are shifted by the group's first element before accumulation (see welford.wgsl).
// A chunk whose plain statistics fail (welford.wgsl's `rescueUnit`) is re-read by invocation 0
// alone (rescue_chunk.wgsl), which adds no barrier and costs only such chunks.
// Output: partials[g * chunks + c] = welford.wgsl's `partialOf`: (n * unit, mean, M2, shift).
// Column statistics' RANGES and SKIP_NAN are not implemented here: their views ([rows, width],
// S = 1) always take reduce_stats_columns.wgsl or reduce_stats_serial.wgsl.

override WG: u32 = 256;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
  chunkLen: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Words: float32 bits, or two halves (X_HALF, epilogue.wgsl); read with loadX (rescue_chunk.wgsl).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let c = wid.x;
  // Groups may outnumber the per-dimension dispatch limit: they span y and z.
  let g = wid.y + wid.z * nwg.y;
  let groups = params.o * params.q;
  if (g >= groups) { return; }

  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + (g % params.q) * params.s;
  let shift = groupShift(loadX(base));
  let start = c * params.chunkLen;
  let end = min(start + params.chunkLen, params.p * params.s);

  var acc = NO_MOMENTS;
  for (var j = start + lid; j < end; j += WG) {
    let p = j / params.s;
    acc = pushSample(acc, loadX(base + p * qs + (j - p * params.s)), shift);
  }
  let total = workgroupMerge(acc, lid);
  if (lid == 0u) {
    let unit = rescueUnit(total, shift);
    var st = Stats(total, shift, 1.0);
    if (unit != 1.0) {
      st = rescueChunk(base, start, end, params.s, shift, unit);
    }
    partials[g * params.chunks + c] = partialOf(st);
  }
}
