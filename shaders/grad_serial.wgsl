// The backward's stages fused, one invocation per statistics group or set of groups: for
// software adapters.
//
// A CPU-backed adapter such as SwiftShader runs invocations as a few SIMD lanes per core; it
// rewards long serial loops and punishes barriers (normalize_serial.wgsl, the forward's twin of
// this kernel) and pays a fixed cost per dispatch close to a small tensor's whole copy, so this
// kernel also makes the parameter sums, leaving at most one small merge after it. Each group
// gets two passes over its elements: the sums of reduce_grad (Σ g, Σ g * d, Σ d with
// d = x - mean, g = dy * weight), folded into the group's table as merge_grad's main_groups
// does (laneTable), then dx as apply_grad does (dxOf), adding Σ dy and Σ dy * x̂ per parameter
// on the way. The second pass usually hits the cache the first one filled.
//
// main_spans (BatchNorm, InstanceNorm, GroupNorm of the [O, P, Q, S] view): the group (o, q)
//   is S / paramS spans of one parameter k = q * paramQ + h, each P runs of paramS floats
//   (stride Q*S). Spans are summed in blocks of about BLOCK elements (blockRows runs of at most
//   BLOCK floats), blocks and spans with Kahan compensation, so float32 rounding stays that of a
//   64-term sum. With DIRECT an invocation owns column q for every block o and writes dweight
//   and dbias itself (their O terms added in order); otherwise it owns group (o, q) and writes
//   cells[o * C + k] = (Σ dy, Σ dy * x̂, 0, 0), the [O, 1, C] layout merge_grad's main_params
//   adds up (SCALED). The cells and dbias share binding 7 (as floats): one or the other is used.
// main_lanes (channels-last: paramS = 1, Q*S a multiple of 4, S dividing 4 or a multiple of
//   it): lane l of an invocation is column 4j + l of a pixel, its own parameter, and the groups
//   of the invocation's unit of max(4, S) columns are complete in it (four of S = 1, two of
//   S = 2, one of S >= 4): its sums are per lane, added across lanes into each lane's group.
//   Pixels are summed in blocks of blockRows; DIRECT and the cells as for main_spans.
// main_rows (LayerNorm, RMSNorm: the [rows, 1, 1, width] view, paramS = 1): an invocation owns
//   rowBlock consecutive rows (groups): the first pass writes each row's table, the second goes
//   column by column over the rows, so each column's Σ dy and Σ dy * x̂ over them (at most 64
//   terms) is one cell of [blocks, 1, width] for merge_grad's main_params.
// The _vec4 entries read and write whole vec4s (runs of 4k floats, vec4-aligned parameters): a
// CPU adapter turns each lane's scalar load into a separate gather, so this quarters them.
// MODE as in grad_common.wgsl; with MODE running the first pass is skipped (dx = g * rstd).

override WG: u32 = 64;
override MODE: u32 = 0;
override HAS_WEIGHT: bool = false;
override WANT_DX: bool = true;
override WANT_WEIGHT: bool = false;
override WANT_BIAS: bool = false;
// main_spans, main_lanes: one invocation over every block o, dweight and dbias written here.
override DIRECT: bool = false;

const BLOCK = 64u;

struct Params {
  o: u32,
  p: u32,
  q: u32,
  s: u32,
  paramQ: u32,
  paramS: u32,
  // Runs per block of main_spans (max(1, BLOCK / paramS)), pixels per block of main_lanes.
  blockRows: u32,
  // Rows per invocation of main_rows.
  rowBlock: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4<f32>>;
// main_spans, main_lanes: dweight (DIRECT), and dbias (DIRECT) or the cells as floats.
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbiasOrCells: array<f32>;
// main_rows: the rows' tables (two vec4 each) and the column cells.
@group(0) @binding(6) var<storage, read_write> table: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> cells: array<vec4<f32>>;

fn savedMean(g: u32) -> f32 {
  if (MODE == 2u) { return 0.0; }
  return mean[g];
}

fn weightAt(k: u32) -> f32 {
  if (HAS_WEIGHT) { return weight[k]; }
  return 1.0;
}

fn weight4At(k4: u32) -> vec4<f32> {
  if (HAS_WEIGHT) { return weight4[k4]; }
  return vec4<f32>(1.0);
}

fn wantParams() -> bool {
  return WANT_WEIGHT || WANT_BIAS;
}

// First element of group g.
fn groupBase(g: u32) -> u32 {
  return (g / params.q) * params.p * params.q * params.s + (g % params.q) * params.s;
}

// Invocation `i` of main_spans/main_lanes over `units` columns of groups per block: (column,
// first block, end block), and whether it is in range.
fn blocksOf(gid: vec3<u32>, nwg: vec3<u32>, units: u32) -> vec4<u32> {
  let i = gid.x + gid.y * nwg.x * WG;
  if (DIRECT) { return vec4<u32>(i, 0u, params.o, u32(i < units)); }
  return vec4<u32>(i % units, i / units, i / units + 1u, u32(i < units * params.o));
}

// Parameter k's sums (Σ dy, Σ dy * x̂) over block o: added to dweight and dbias (DIRECT; the
// first block writes them), or its cell.
fn paramSums(o: u32, k: u32, sums: vec2<f32>) {
  if (DIRECT) {
    if (WANT_BIAS) { dbiasOrCells[k] = select(dbiasOrCells[k] + sums.x, sums.x, o == 0u); }
    if (WANT_WEIGHT) { dweight[k] = select(dweight[k] + sums.y, sums.y, o == 0u); }
  } else {
    let c = 4u * (o * params.q * params.paramQ + k);
    dbiasOrCells[c] = sums.x;
    dbiasOrCells[c + 1u] = sums.y;
    dbiasOrCells[c + 2u] = 0.0;
    dbiasOrCells[c + 3u] = 0.0;
  }
}

// Block sums (Σ dy, Σ dy * d, Σ d) of runs [p0, p1) of floats [s0, s1) of the span at `start`.
fn spanBlock(start: u32, p0: u32, p1: u32, s0: u32, s1: u32, m: f32) -> vec4<f32> {
  var block = vec4<f32>(0.0);
  for (var p = p0; p < p1; p++) {
    let row = start + p * params.q * params.s;
    for (var s = s0; s < s1; s++) {
      let v = dy[row + s];
      let d = x[row + s] - m;
      block += vec4<f32>(v, v * d, d, 0.0);
    }
  }
  return block;
}

// spanBlock on vec4s (start, s0 and s1 multiples of 4).
fn spanBlock4(start: u32, p0: u32, p1: u32, s0: u32, s1: u32, m: f32) -> vec4<f32> {
  var sv = vec4<f32>(0.0);
  var svd = vec4<f32>(0.0);
  var sd = vec4<f32>(0.0);
  for (var p = p0; p < p1; p++) {
    let row = (start + p * params.q * params.s) / 4u;
    for (var s = s0 / 4u; s < s1 / 4u; s++) {
      let v = dy4[row + s];
      let d = x4[row + s] - m;
      sv += v;
      svd += v * d;
      sd += d;
    }
  }
  let ones = vec4<f32>(1.0);
  return vec4<f32>(dot(sv, ones), dot(svd, ones), dot(sd, ones), 0.0);
}

// The first pass of group g over its spans, in blocks: its table, from the sums of each span
// weighted by the span's parameter (spansTable4: with spanBlock4).
fn spansTable(g: u32) -> LaneTable {
  let m = savedMean(g);
  var acc = NO_SUMS;
  for (var h = 0u; h < params.s / params.paramS && MODE != 1u; h++) {
    let start = groupBase(g) + h * params.paramS;
    var span = NO_SUMS;
    for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
      for (var s0 = 0u; s0 < params.paramS; s0 += BLOCK) {
        span = kahan(span, spanBlock(start, p0, min(p0 + params.blockRows, params.p), s0, min(s0 + BLOCK, params.paramS), m));
      }
    }
    acc = addSpan(acc, g, h, span.s);
  }
  return groupTable(g, acc.s, m);
}

fn spansTable4(g: u32) -> LaneTable {
  let m = savedMean(g);
  var acc = NO_SUMS;
  for (var h = 0u; h < params.s / params.paramS && MODE != 1u; h++) {
    let start = groupBase(g) + h * params.paramS;
    var span = NO_SUMS;
    for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
      for (var s0 = 0u; s0 < params.paramS; s0 += BLOCK) {
        span = kahan(span, spanBlock4(start, p0, min(p0 + params.blockRows, params.p), s0, min(s0 + BLOCK, params.paramS), m));
      }
    }
    acc = addSpan(acc, g, h, span.s);
  }
  return groupTable(g, acc.s, m);
}

// Span h's unweighted sums added to its group's, weighted by its parameter.
fn addSpan(acc: Sums, g: u32, h: u32, span: vec4<f32>) -> Sums {
  let w = weightAt((g % params.q) * params.paramQ + h);
  return kahan(acc, vec4<f32>(w * span.x, w * span.y, span.z, 0.0));
}

// Group g's table (all lanes alike) from its sums (Σ g, Σ g * d, Σ d).
fn groupTable(g: u32, sums: vec4<f32>, m: f32) -> LaneTable {
  return laneTable(vec4<f32>(sums.x), vec4<f32>(sums.y), vec4<f32>(sums.z), f32(params.p * params.s), vec4<f32>(m), vec4<f32>(rstd[g]));
}

@compute @workgroup_size(WG)
fn main_spans(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = blocksOf(gid, nwg, params.q);
  if (at.w == 0u) { return; }
  let q = at.x;
  let qs = params.q * params.s;
  for (var o = at.y; o < at.z; o++) {
    let g = o * params.q + q;
    let t = spansTable(g);
    if (!WANT_DX && !wantParams()) { continue; }
    let base = groupBase(g);
    let t0 = vec4<f32>(t.m.x, t.corr.x, t.s.x, 0.0);
    let t1 = vec4<f32>(t.meanG.x, t.meanGX.x, 0.0, 0.0);
    for (var h = 0u; h < params.s / params.paramS; h++) {
      let k = q * params.paramQ + h;
      let w = weightAt(k);
      var sums = NO_SUMS;
      for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
        let p1 = min(p0 + params.blockRows, params.p);
        for (var s0 = 0u; s0 < params.paramS; s0 += BLOCK) {
          var block = vec4<f32>(0.0);
          for (var p = p0; p < p1; p++) {
            let row = base + p * qs + h * params.paramS;
            for (var s = s0; s < min(s0 + BLOCK, params.paramS); s++) {
              let v = dy[row + s];
              let xv = x[row + s];
              if (WANT_DX) { dx[row + s] = dxOf(v, w, xv, t0, t1); }
              block += vec4<f32>(v, v * ((xv - t0.x) - t0.y) * t0.z, 0.0, 0.0);
            }
          }
          sums = kahan(sums, block);
        }
      }
      if (wantParams()) { paramSums(o, k, sums.s.xy); }
    }
  }
}

// main_spans on vec4s: paramS is a multiple of 4, so every span and run is vec4-aligned.
@compute @workgroup_size(WG)
fn main_spans_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = blocksOf(gid, nwg, params.q);
  if (at.w == 0u) { return; }
  let q = at.x;
  let qs4 = params.q * params.s / 4u;
  let run4 = params.paramS / 4u;
  let ones = vec4<f32>(1.0);
  for (var o = at.y; o < at.z; o++) {
    let g = o * params.q + q;
    let t = spansTable4(g);
    if (!WANT_DX && !wantParams()) { continue; }
    let base4 = groupBase(g) / 4u;
    for (var h = 0u; h < params.s / params.paramS; h++) {
      let k = q * params.paramQ + h;
      let w = vec4<f32>(weightAt(k));
      var sums = NO_SUMS;
      for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
        let p1 = min(p0 + params.blockRows, params.p);
        for (var s0 = 0u; s0 < run4; s0 += BLOCK / 4u) {
          var sv = vec4<f32>(0.0);
          var sx = vec4<f32>(0.0);
          for (var p = p0; p < p1; p++) {
            let row = base4 + p * qs4 + h * run4;
            for (var s = s0; s < min(s0 + BLOCK / 4u, run4); s++) {
              let v = dy4[row + s];
              let xv = x4[row + s];
              if (WANT_DX) { dx4[row + s] = dxOfLanes(v, w, xv, t); }
              sv += v;
              sx += v * xhatOf4(xv, t);
            }
          }
          sums = kahan(sums, vec4<f32>(dot(sv, ones), dot(sx, ones), 0.0, 0.0));
        }
      }
      if (wantParams()) { paramSums(o, k, sums.s.xy); }
    }
  }
}

// Per-lane totals added across the lanes of each group: S = 1 keeps them, S = 2 adds pairs,
// S >= 4 adds all four.
fn laneGroups(v: vec4<f32>) -> vec4<f32> {
  if (params.s == 1u) { return v; }
  if (params.s == 2u) { return v.xxzz + v.yyww; }
  return vec4<f32>(dot(v, vec4<f32>(1.0)));
}

@compute @workgroup_size(WG)
fn main_lanes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // A unit of max(4, S) columns: uq quads, 4 / S groups or one.
  let uq = max(1u, params.s / 4u);
  let w4 = params.q * params.s / 4u;
  let at = blocksOf(gid, nwg, w4 / uq);
  if (at.w == 0u) { return; }
  let c0 = at.x * uq;
  let q4 = (vec4<u32>(4u * c0) + vec4<u32>(0u, 1u, 2u, 3u)) / params.s;
  let n = f32(params.p * params.s);
  for (var o = at.y; o < at.z; o++) {
    let g = o * params.q + q4;
    let m = vec4<f32>(savedMean(g.x), savedMean(g.y), savedMean(g.z), savedMean(g.w));
    let r = vec4<f32>(rstd[g.x], rstd[g.y], rstd[g.z], rstd[g.w]);
    let base4 = o * params.p * w4;
    var sa = NO_SUMS;
    var sb = NO_SUMS;
    var sd = NO_SUMS;
    if (MODE != 1u) {
      for (var j = c0; j < c0 + uq; j++) {
        let w = weight4At(j);
        for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
          var bv = vec4<f32>(0.0);
          var bvd = vec4<f32>(0.0);
          var bd = vec4<f32>(0.0);
          for (var p = p0; p < min(p0 + params.blockRows, params.p); p++) {
            let v = dy4[base4 + p * w4 + j];
            let d = x4[base4 + p * w4 + j] - m;
            bv += v;
            bvd += v * d;
            bd += d;
          }
          sa = kahan(sa, w * bv);
          sb = kahan(sb, w * bvd);
          sd = kahan(sd, bd);
        }
      }
    }
    let t = laneTable(laneGroups(sa.s), laneGroups(sb.s), laneGroups(sd.s), n, m, r);
    if (!WANT_DX && !wantParams()) { continue; }
    for (var j = c0; j < c0 + uq; j++) {
      let w = weight4At(j);
      var sv = NO_SUMS;
      var sx = NO_SUMS;
      for (var p0 = 0u; p0 < params.p; p0 += params.blockRows) {
        var bv = vec4<f32>(0.0);
        var bx = vec4<f32>(0.0);
        for (var p = p0; p < min(p0 + params.blockRows, params.p); p++) {
          let i = base4 + p * w4 + j;
          let v = dy4[i];
          let xv = x4[i];
          if (WANT_DX) { dx4[i] = dxOfLanes(v, w, xv, t); }
          bv += v;
          bx += v * xhatOf4(xv, t);
        }
        sv = kahan(sv, bv);
        sx = kahan(sx, bx);
      }
      if (wantParams()) {
        for (var l = 0u; l < 4u; l++) { paramSums(o, 4u * j + l, vec2<f32>(sv.s[l], sx.s[l])); }
      }
    }
  }
}

// The first pass of main_rows on row r: its table, written to table[2r], table[2r + 1]
// (rowTable4: on vec4s).
fn rowTable(r: u32) {
  let m = savedMean(r);
  var acc = NO_SUMS;
  for (var s0 = 0u; s0 < params.s && MODE != 1u; s0 += BLOCK) {
    var block = vec4<f32>(0.0);
    for (var s = s0; s < min(s0 + BLOCK, params.s); s++) {
      let a = dy[r * params.s + s] * weightAt(s);
      let d = x[r * params.s + s] - m;
      block += vec4<f32>(a, a * d, d, 0.0);
    }
    acc = kahan(acc, block);
  }
  writeRowTable(r, acc.s, m);
}

fn rowTable4(r: u32) {
  let m = savedMean(r);
  let row = r * params.s / 4u;
  let ones = vec4<f32>(1.0);
  var acc = NO_SUMS;
  for (var s0 = 0u; s0 < params.s / 4u && MODE != 1u; s0 += BLOCK / 4u) {
    var sa = vec4<f32>(0.0);
    var sad = vec4<f32>(0.0);
    var sd = vec4<f32>(0.0);
    for (var s = s0; s < min(s0 + BLOCK / 4u, params.s / 4u); s++) {
      let a = dy4[row + s] * weight4At(s);
      let d = x4[row + s] - m;
      sa += a;
      sad += a * d;
      sd += d;
    }
    acc = kahan(acc, vec4<f32>(dot(sa, ones), dot(sad, ones), dot(sd, ones), 0.0));
  }
  writeRowTable(r, acc.s, m);
}

fn writeRowTable(r: u32, sums: vec4<f32>, m: f32) {
  let t = gradTable(sums.xyz, f32(params.s), m, rstd[r]);
  table[2u * r] = t[0];
  table[2u * r + 1u] = t[1];
}

// Rows [r0, r1) of invocation i of main_rows: (r0, r1), empty past the last block.
fn rowsOf(gid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
  let i = gid.x + gid.y * nwg.x * WG;
  let r0 = min(i * params.rowBlock, params.o);
  return vec2<u32>(r0, min(r0 + params.rowBlock, params.o));
}

@compute @workgroup_size(WG)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let rows = rowsOf(gid, nwg);
  if (rows.x == rows.y) { return; }
  for (var r = rows.x; r < rows.y; r++) { rowTable(r); }
  if (!WANT_DX && !wantParams()) { return; }
  let block = gid.x + gid.y * nwg.x * WG;
  for (var s = 0u; s < params.s; s++) {
    let w = weightAt(s);
    var sums = vec2<f32>(0.0);
    for (var r = rows.x; r < rows.y; r++) {
      let t = table[2u * r];
      let i = r * params.s + s;
      let v = dy[i];
      if (WANT_DX) { dx[i] = dxOf(v, w, x[i], t, table[2u * r + 1u]); }
      sums += vec2<f32>(v, v * ((x[i] - t.x) - t.y) * t.z);
    }
    if (wantParams()) { cells[block * params.s + s] = vec4<f32>(sums, 0.0, 0.0); }
  }
}

// main_rows on vec4s: rows of 4k floats.
@compute @workgroup_size(WG)
fn main_rows_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let rows = rowsOf(gid, nwg);
  if (rows.x == rows.y) { return; }
  for (var r = rows.x; r < rows.y; r++) { rowTable4(r); }
  if (!WANT_DX && !wantParams()) { return; }
  let block = gid.x + gid.y * nwg.x * WG;
  let run4 = params.s / 4u;
  for (var s = 0u; s < run4; s++) {
    let w = weight4At(s);
    var sv = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var r = rows.x; r < rows.y; r++) {
      let t = splatTable(table[2u * r], table[2u * r + 1u]);
      let i = r * run4 + s;
      let v = dy4[i];
      let xv = x4[i];
      if (WANT_DX) { dx4[i] = dxOfLanes(v, w, xv, t); }
      sv += v;
      sx += v * xhatOf4(xv, t);
    }
    if (wantParams()) {
      for (var l = 0u; l < 4u; l++) { cells[block * params.s + 4u * s + l] = vec4<f32>(sv[l], sx[l], 0.0, 0.0); }
    }
  }
}
