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
// the ty partials of each column are then Chan-merged through workgroup memory. Samples are
// shifted by their group's first element (row 0, column q*S). A column whose plain statistics
// fail (welford.wgsl's `rescueUnit`) is re-read by its invocation ly = 0 alone: no barrier
// is added, and only such columns pay.
// Column tiles span grid x, capped at maxComputeWorkgroupsPerDimension; the tiles beyond it
// fold into z with the blocks o: z = o * T + t for T = ceil(tiles / nwg.x), tile
// wid.x + t * nwg.x (a loop over tiles around the barriers would slow every dispatch on
// software adapters). Row chunks span y.
// Output: partials[((o * rowChunks + rc) * W) + w] = welford.wgsl's `partialOf`. finalize_stats
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
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tx = params.tx;
  let ty = WG / tx;
  let lx = lid % tx;
  let ly = lid / tx;
  let width = params.q * params.s;
  let foldedTiles = ((width + tx - 1u) / tx + nwg.x - 1u) / nwg.x;
  let w = (wid.x + (wid.z % foldedTiles) * nwg.x) * tx + lx;
  let rc = wid.y;
  let o = wid.z / foldedTiles;
  let inRange = w < width;
  let block = o * params.p * width;
  let rowStart = rc * params.rowsPerChunk;
  let rowEnd = min(rowStart + params.rowsPerChunk, params.p);

  var blocked = NO_SAMPLES;
  var shift = 0.0;
  if (inRange) {
    shift = groupShift(x[block + (w / params.s) * params.s]);
    for (var p = rowStart + ly; p < rowEnd; p += ty) {
      blocked = blockedPush(blocked, x[block + p * width + w], shift);
    }
  }
  var total = blockedTotal(blocked);
  rowsTile[lid] = total;
  workgroupBarrier();
  if (ly == 0u && inRange) {
    for (var r = 1u; r < ty; r++) {
      total = chanMerge(total, rowsTile[r * tx + lx]);
    }
    let unit = rescueUnit(total, shift);
    var st = Stats(total, shift, 1.0);
    if (unit != 1.0) {
      let sh = shift * unit;
      var m = NO_MOMENTS;
      for (var b = rowStart; b < rowEnd; b += RESCUE_BLOCK) {
        var run = NO_MOMENTS;
        for (var p = b; p < min(b + RESCUE_BLOCK, rowEnd); p++) {
          run = pushSample(run, x[block + p * width + w] * unit, sh);
        }
        m = chanMerge(m, run);
      }
      st = Stats(m, sh, unit);
    }
    partials[(o * params.rowChunks + rc) * width + w] = partialOf(st);
  }
}
