// Stage 1 (serial): one invocation folds one chunk of a group, with no cooperation at all.
//
// Two uses. On a CPU-backed adapter such as SwiftShader, invocations are SIMD lanes of a few
// threads and long serial loops without barriers win (FACTS.md): a few huge groups are cut
// into `chunks` pieces so that every core gets lanes. On a GPU, groups of a few dozen
// elements are packed one per invocation (chunks = 1) so that no workgroup idles.
//
// Invocation t owns chunk c = t / groups of group g = t % groups of the [O, P, Q, S] view:
// elements [c*chunkLen, (c+1)*chunkLen) of the group's P*S, walked in memory order without a
// division per element. Neighbouring lanes take neighbouring groups, which in channels-last
// views are neighbouring floats. Samples are shifted by the group's first element (welford.wgsl);
// a chunk whose plain statistics fail (`rescueUnit`) takes a second, rescue pass.
// Output: partials[g * chunks + c] = welford.wgsl's `partialOf`, merged by finalize_stats.

override WG: u32 = 64;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
  chunkLen: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let groups = params.o * params.q;
  if (t >= groups * params.chunks) { return; }
  let g = t % groups;
  let c = t / groups;
  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + (g % params.q) * params.s;
  let shift = groupShift(x[base]);

  let start = c * params.chunkLen;
  let end = min(start + params.chunkLen, params.p * params.s);
  var acc = NO_SAMPLES;
  var p = start / params.s;
  var s = start % params.s;
  for (var j = start; j < end; j++) {
    acc = blockedPush(acc, x[base + p * qs + s], shift);
    s++;
    if (s == params.s) {
      s = 0u;
      p++;
    }
  }
  let total = blockedTotal(acc);
  let unit = rescueUnit(total, shift);
  var st = Stats(total, shift, 1.0);
  if (unit != 1.0) {
    let sh = shift * unit;
    var m = NO_MOMENTS;
    for (var b = start; b < end; b += RESCUE_BLOCK) {
      var block = NO_MOMENTS;
      for (var j = b; j < min(b + RESCUE_BLOCK, end); j++) {
        let p = j / params.s;
        block = pushSample(block, x[base + p * qs + (j - p * params.s)] * unit, sh);
      }
      m = chanMerge(m, block);
    }
    st = Stats(m, sh, unit);
  }
  partials[g * params.chunks + c] = partialOf(st);
}
