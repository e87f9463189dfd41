// Stage 1 (parallel, short runs): partial statistics per column for views with small S.
//
// The input is viewed as [O, P, W] with W = Q*S: every row p of a block o is W contiguous
// floats, and group (o, q) owns columns [q*S, (q+1)*S) of all P rows. That is BatchNorm and
// InstanceNorm channels-last (S = 1: one column per channel) and GroupNorm channels-last
// (S = C/G). Reading along rows keeps loads coalesced where the rows-variant would stride.
//
// A workgroup of WG invocations is a tile of tx columns by ty = WG / tx rows (tx, a power of
// two, is a uniform: row widths never make new pipelines). Invocation (lx, ly)
// Welford-accumulates column tile*tx + lx over rows rowStart + ly, + ty, ... of its row chunk;
// the ty partials of each column are then Chan-merged through workgroup memory. Samples are shifted by their group's
// first element (row 0, column q*S).
// Output: partials[((o * rowChunks + rc) * W) + w] = (n, mean, M2, shift). finalize_stats
// merges, for group (o, q), the rowChunks x S partials of its columns.

override WG: u32 = 256;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
  rowsPerChunk: u32,
  rowChunks: u32,
  tx: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;

var<workgroup> rowsTile: array<Moments, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tx = params.tx;
  let ty = WG / tx;
  let lx = lid % tx;
  let ly = lid / tx;
  let w = wid.x * tx + lx;
  let rc = wid.y;
  let o = wid.z;
  let width = params.q * params.s;
  let inRange = w < width;

  var blocked = NO_SAMPLES;
  var shift = 0.0;
  if (inRange) {
    let block = o * params.p * width;
    shift = groupShift(x[block + (w / params.s) * params.s]);
    let rowEnd = min((rc + 1u) * params.rowsPerChunk, params.p);
    for (var p = rc * params.rowsPerChunk + ly; p < rowEnd; p += ty) {
      blocked = blockedPush(blocked, x[block + p * width + w], shift);
    }
  }
  var acc = blockedTotal(blocked);
  rowsTile[lid] = acc;
  workgroupBarrier();
  if (ly == 0u && inRange) {
    for (var r = 1u; r < ty; r++) {
      acc = chanMerge(acc, rowsTile[r * tx + lx]);
    }
    partials[(o * params.rowChunks + rc) * width + w] = vec4<f32>(acc.n, acc.mean, acc.m2, shift);
  }
}
