// Column statistics, stage 2: Chan-merge partials along the middle axis of an [A, B, C] view.
//
// Input partials (n, mean, M2, shift) + (min, max) sit at index (a * B + b) * C + c; the B
// partials of each (a, c) are split into S slices of `sliceLen` and each slice is merged into
// output (a * S + s) * C + c. The same stage serves every merge the statistics need:
//   [1, J, W] -> [1, S, W]    the J row chunks of each column (column_stats.wgsl's output);
//   [C, HW, 1] -> [C, S, 1]   the pixels of each channel, channels-first images;
//   [1, HW, C] -> [1, S, C]   the same for channels-last images.
// The few slices left are merged on the host in float64. Partials may carry different shifts:
// the merge takes the first one's and rebases the other's mean onto it, (shift_b - shift_a) +
// mean_b, so a mean stays a small correction to an exactly known reference and large offsets
// cost nothing; the rebased pair goes through welford.wgsl's `chanMerge` (which also keeps
// infinite means infinite). Min and max merge as themselves.
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
  n: f32,
  mean: f32,
  m2: f32,
  shift: f32,
  lo: f32,
  hi: f32,
}

fn mergePartials(a: Partial, b: Partial) -> Partial {
  if (b.n == 0.0) { return a; }
  if (a.n == 0.0) { return b; }
  let m = chanMerge(Moments(a.n, a.mean, a.m2), Moments(b.n, (b.shift - a.shift) + b.mean, b.m2));
  return Partial(m.n, m.mean, m.m2, a.shift, min(a.lo, b.lo), max(a.hi, b.hi));
}

fn loadPartial(i: u32) -> Partial {
  let s = inStats[i];
  let r = inRange[i];
  return Partial(s.x, s.y, s.z, s.w, r.x, r.y);
}

fn storePartial(o: u32, p: Partial) {
  outStats[o] = vec4<f32>(p.n, p.mean, p.m2, p.shift);
  outRange[o] = vec2<f32>(p.lo, p.hi);
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
  var acc = Partial(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
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
  var acc = Partial(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
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
