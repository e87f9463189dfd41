// Column statistics, stage 2: Chan-merge partials along the middle axis of an [A, B, C] view.
//
// Input partials, stage 1's (welford.wgsl's `partialOf`: (n * unit, mean, M2, shift)) with
// their ranges (min, max), sit at index (a * B + b) * C + c; the B partials of each (a, c) are
// split into S slices of `sliceLen` and each slice is merged into output (a * S + s) * C + c.
// The same stage serves every merge the statistics need:
//   [1, J, W] -> [1, 1, W]    the J row chunks of each column (reduce_stats_columns.wgsl);
//   [W, J, 1] -> [W, 1, 1]    the same for reduce_stats_serial.wgsl's chunks;
//   [C, HW, 1] -> [C, S, 1]   the pixels of each channel, channels-first images;
//   [1, HW, C] -> [1, S, C]   the same for channels-last images.
// The few slices left are merged on the host in float64. Partials may carry different shifts
// and units (a chunk that stage 1 rescued): welford.wgsl's `mergeUnits` rebases each mean onto
// the first partial's shift, so a mean stays a small correction to an exactly known reference
// and large offsets cost nothing, in the coarser unit of the two, or in RESCUE where a plain
// merge overflows; its `chanMerge` keeps infinite means infinite. Outputs are partials in the
// same form. Ranges merge as themselves (welford.wgsl's `rangeMerge`).
//
// Variants: `main_serial`, one invocation per output slice with a serial loop (short slices;
// suits software adapters), and `main_tree`, one workgroup per output slice whose WG
// invocations merge a strided share each and then combine through a binary tree in workgroup
// memory (log2(WG) barriers), so the rounding grows with log(B) rather than B.

override WG: u32 = 64;

struct Params {
  a: u32,
  b: u32,
  c: u32,
  slices: u32,
  sliceLen: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inStats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> inRange: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> outStats: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> outRange: array<vec2<f32>>;

struct Partial {
  s: Stats,
  range: vec2<f32>,
}

const NO_PARTIAL = Partial(Stats(NO_MOMENTS, 0.0, 1.0), NO_RANGE);

fn mergePartials(a: Partial, b: Partial) -> Partial {
  return Partial(mergeUnits(a.s, b.s), rangeMerge(a.range, b.range));
}

fn loadPartial(i: u32) -> Partial {
  return Partial(statsOf(inStats[i]), inRange[i]);
}

fn storePartial(o: u32, p: Partial) {
  outStats[o] = partialOf(p.s);
  outRange[o] = p.range;
}

// Input index of the first partial of output o's slice, and the slice's length.
fn sliceOf(o: u32) -> vec3<u32> {
  let c = o % params.c;
  let s = (o / params.c) % params.slices;
  let a = o / (params.c * params.slices);
  let b0 = s * params.sliceLen;
  let len = min(params.sliceLen, params.b - b0);
  return vec3<u32>((a * params.b + b0) * params.c + c, len, 0u);
}

fn outputs() -> u32 {
  return params.a * params.slices * params.c;
}

@compute @workgroup_size(WG)
fn main_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= outputs()) { return; }
  let slice = sliceOf(o);
  var acc = NO_PARTIAL;
  for (var k = 0u; k < slice.y; k++) {
    acc = mergePartials(acc, loadPartial(slice.x + k * params.c));
  }
  storePartial(o, acc);
}

var<workgroup> tree: array<Partial, WG>;

@compute @workgroup_size(WG)
fn main_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // Uniform per workgroup, so every invocation reaches the barriers below.
  let o = wid.x + wid.y * nwg.x;
  let live = o < outputs();
  var acc = NO_PARTIAL;
  if (live) {
    let slice = sliceOf(o);
    for (var k = lid; k < slice.y; k += WG) {
      acc = mergePartials(acc, loadPartial(slice.x + k * params.c));
    }
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      tree[lid] = mergePartials(tree[lid], tree[lid + stride]);
    }
    workgroupBarrier();
  }
  if (live && lid == 0u) {
    storePartial(o, tree[0]);
  }
}
