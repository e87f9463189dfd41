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
// fail (welford.wgsl's `rescueUnit`) is re-read by its invocation ly = 0 alone
// (rescue_chunk.wgsl): no barrier is added, and only such columns pay.
// Column statistics (a [rows, width] view whose groups are the columns, S = 1) add two
// overrides of welford.wgsl: SKIP_NAN leaves NaN samples out (where a column's first element
// is NaN, each invocation shifts by its own first kept sample and the merge through workgroup
// memory rebases means across shifts), and RANGES writes each partial's (min, max) to
// `ranges` at the partial's index.
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
// Words: float32 bits, or two halves (X_HALF, epilogue.wgsl); read with loadX (rescue_chunk.wgsl).
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ranges: array<vec2<f32>>;

var<workgroup> rowsTile: array<Moments, WG>;
// Each invocation's shift (SKIP_NAN) and range (RANGES).
var<workgroup> rowsShift: array<f32, WG>;
var<workgroup> rowsRange: array<vec2<f32>, WG>;

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
  var range = NO_RANGE;
  if (inRange) {
    let first = loadX(block + (w / params.s) * params.s);
    shift = groupShift(first);
    var lazyShift = SKIP_NAN && isNan(first);
    for (var p = rowStart + ly; p < rowEnd; p += ty) {
      let v = loadX(block + p * width + w);
      if (keeps(v)) {
        if (lazyShift) {
          shift = groupShift(v);
          lazyShift = false;
        }
        blocked = blockedPush(blocked, v, shift);
        if (RANGES) { range = rangePush(range, v); }
      }
    }
  }
  var st = Stats(blockedTotal(blocked), shift, 1.0);
  rowsTile[lid] = st.m;
  if (SKIP_NAN) { rowsShift[lid] = shift; }
  if (RANGES) { rowsRange[lid] = range; }
  workgroupBarrier();
  if (ly == 0u && inRange) {
    for (var r = 1u; r < ty; r++) {
      let i = r * tx + lx;
      // Without SKIP_NAN every invocation of a column has its shift: the rebase adds 0.
      st = mergeShifted(st, Stats(rowsTile[i], select(shift, rowsShift[i], SKIP_NAN), 1.0));
      if (RANGES) { range = rangeMerge(range, rowsRange[i]); }
    }
    let unit = rescueUnit(st.m, st.shift);
    if (unit != 1.0) {
      st = rescueChunk(block + w, rowStart, rowEnd, 1u, st.shift, unit);
    }
    let out = (o * params.rowChunks + rc) * width + w;
    partials[out] = partialOf(st);
    if (RANGES) { ranges[out] = range; }
  }
}
