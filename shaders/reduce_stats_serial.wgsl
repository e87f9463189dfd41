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
// a chunk whose plain statistics fail (`rescueUnit`) takes a second, rescue pass
// (rescue_chunk.wgsl).
//
// Column statistics (a [rows, width] view whose groups are the columns) add two overrides of
// welford.wgsl: SKIP_NAN leaves NaN samples out (a chunk without any is an empty partial,
// n = 0; where the group's first element is NaN, the chunk is shifted by its own first kept
// sample, and the merges rebase means across shifts), and RANGES writes each partial's
// (min, max) to `ranges`.
// Output: partials[g * chunks + c] = welford.wgsl's `partialOf`, merged by finalize_stats (or
// merge_stats.wgsl for column statistics); with RANGES, ranges[g * chunks + c].
//
// `main_vec4` is the same walk for float32 runs of 4k floats (S % 4 == 0, chunkLen % 4 == 0,
// neither SKIP_NAN nor RANGES): one vec4 load per four samples (a CPU adapter turns each
// lane's load into a gather, so this quarters them) summed in blocks (welford.wgsl's
// `quadBlock`: no division per sample); its rescue pass reruns the same loop in the rescue unit.
// `main_vec4_columns` is the column walk of channels-last views (S = 1, every column a group)
// for float32 rows of 4k floats: invocation t takes four neighbouring columns as one vec4 per
// row, each component its own group (a quarter of the gathers of `main`), summed in blocks of
// BLOCK rows (`quadBlock` of one component). Where a component's plain statistics fail, the
// loop runs again with that component in its rescue unit; only the components still pending
// are written.

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
// Words: float32 bits, or two halves (X_HALF, epilogue.wgsl); read with loadX (rescue_chunk.wgsl).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ranges: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let groups = params.o * params.q;
  if (t >= groups * params.chunks) { return; }
  let g = t % groups;
  let c = t / groups;
  let qs = params.q * params.s;
  let base = (g / params.q) * params.p * qs + (g % params.q) * params.s;
  var shift = groupShift(loadX(base));
  var lazyShift = SKIP_NAN && isNan(loadX(base));

  let start = c * params.chunkLen;
  let end = min(start + params.chunkLen, params.p * params.s);
  var acc = NO_SAMPLES;
  var range = NO_RANGE;
  var p = start / params.s;
  var s = start % params.s;
  for (var j = start; j < end; j++) {
    let v = loadX(base + p * qs + s);
    if (keeps(v)) {
      if (lazyShift) {
        shift = groupShift(v);
        lazyShift = false;
      }
      acc = blockedPush(acc, v, shift);
      if (RANGES) { range = rangePush(range, v); }
    }
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
    st = rescueChunk(base, start, end, params.s, shift, unit);
  }
  partials[g * params.chunks + c] = partialOf(st);
  if (RANGES) { ranges[g * params.chunks + c] = range; }
}

@compute @workgroup_size(WG)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let groups = params.o * params.q;
  if (t >= groups * params.chunks) { return; }
  let g = t % groups;
  let c = t / groups;
  let qs4 = params.q * params.s / 4u;
  let s4 = params.s / 4u;
  let base4 = (g / params.q) * params.p * qs4 + (g % params.q) * s4;
  let shift = groupShift(x4[base4].x);

  let start = c * params.chunkLen;
  let end = min(start + params.chunkLen, params.p * params.s);
  // The rescue pass is quad_stats.wgsl's (rescueChunk reads x as words, which this entry may
  // not bind beside x4).
  partials[g * params.chunks + c] = partialOf(quadStats(base4, start / 4u, end / 4u, s4, qs4, shift));
}

fn quadAt(i: u32) -> vec4<f32> {
  return x4[i];
}

@compute @workgroup_size(WG)
fn main_vec4_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let q4 = params.q / 4u;
  let quads = params.o * q4;
  if (t >= quads * params.chunks) { return; }
  let g4 = t % quads;
  let c = t / quads;
  let base4 = (g4 / q4) * params.p * q4 + (g4 % q4);
  // Group of component 0: o * Q + the quad's first column.
  let g0 = (g4 / q4) * params.q + (g4 % q4) * 4u;
  let first = x4[base4];
  let shift = vec4<f32>(groupShift(first.x), groupShift(first.y), groupShift(first.z), groupShift(first.w));

  let start = c * params.chunkLen;
  let end = min(start + params.chunkLen, params.p);
  var unit = vec4<f32>(1.0);
  var pending = vec4<bool>(true);
  loop {
    let sh = shift * unit;
    var acc = array<Blocked, 4>(NO_SAMPLES, NO_SAMPLES, NO_SAMPLES, NO_SAMPLES);
    var centre = vec4<f32>(0.0);
    var j = start;
    var i = base4 + start * q4;
    loop {
      if (j >= end) { break; }
      let stop = min(j + u32(BLOCK), end);
      let n = f32(stop - j);
      var sums = vec4<f32>(0.0);
      // Compensation of the sums (Kahan): a first block centred on one sample far from the
      // column's mean would otherwise lose the mean to the rounding of 64 additions.
      var carry = vec4<f32>(0.0);
      var squares = vec4<f32>(0.0);
      for (; j < stop; j++) {
        var d = x4[i] * unit;
        if (!SQUARE) { d = (d - sh) - centre; }
        let y = d - carry;
        let t = sums + y;
        // Once a sum is infinite (or NaN) it carries on alone, as a plain sum would.
        carry = select(vec4<f32>(0.0), (t - sums) - y, abs(t) <= vec4<f32>(0x1.fffffep+127f));
        sums = t;
        squares += d * d;
        i += q4;
      }
      for (var k = 0u; k < 4u; k++) {
        let block = quadBlock(vec4<f32>(sums[k], 0.0, 0.0, 0.0), vec4<f32>(squares[k], 0.0, 0.0, 0.0), n, centre[k]);
        acc[k] = carryBlock(acc[k], block);
        centre[k] = nextCentre(block);
      }
    }
    var again = false;
    for (var k = 0u; k < 4u; k++) {
      if (!pending[k]) { continue; }
      let total = blockedTotal(acc[k]);
      let next = rescueUnit(total, shift[k]);
      if (unit[k] != 1.0 || next == 1.0) {
        partials[(g0 + k) * params.chunks + c] = partialOf(Stats(total, sh[k], unit[k]));
        pending[k] = false;
      } else {
        unit[k] = next;
        again = true;
      }
    }
    if (!again) { return; }
  }
}
