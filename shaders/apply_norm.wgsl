// Stage 3: the fused elementwise normalize, y = act(((x * k - shift) - mean) * (rstd / k * weight) + bias).
//
// The tensor is walked as rows of `width` contiguous floats, laid out so that index math
// happens once per row, not once per element:
//   per-row groups (channels-first BN/IN/GN: a row is one channel's spatial plane) — the group
//     is (r / groupDiv) % groupMod and the affine index (r / paramDiv) % paramMod, shared by
//     the whole row;
//   per-column groups (channels-last BN/IN/GN, LayerNorm, RMSNorm: a row is one pixel's
//     channels or one token's features) — the affine index is the column w, and the group is
//     ((r / groupDiv) % groupMod) * groupMul plus 0, w, or w / columnGroupDiv (COLUMN_GROUPS).
// Subtracting the group mean as the pair (shift, mean) from finalize_stats keeps large offsets
// exact. k (stats.w, stats.z holding rstd / k) is 1 except for groups whose statistics had to
// be rescued (welford.wgsl): scaling x by k first keeps x - mean and rstd within float32 for
// inputs up to its limits.
//
// A workgroup is `tw` invocations along a row by WG / tw rows; it strides over rows, and each
// invocation steps along its row by tw, so the inner loop has no division at all. tw (a power
// of two up to WG) is picked by the planner to match the row length and travels in the
// uniforms, so row lengths never make new pipelines. When width % 4 == 0 one of the
// three `main_vec4_*` entry points moves four floats per access, one per row kind; `main` is
// the scalar fallback for every kind. On CPU-backed adapters channels-first rows take
// `main_vec4_runs` instead: each invocation owns a contiguous run of `run` vec4s of one plane,
// so the row's divisions and affine gathers are paid once per run rather than once per ~3
// vec4s (there every lane's vec4 access is a gather anyway, so neighbouring lanes gain nothing
// from neighbouring addresses; a GPU keeps the coalesced `main_vec4_planes`).
//
// Element types and the activation come from epilogue.wgsl (linked first): `main` reads float16
// inputs (X_HALF) and writes float32; `main_pairs` writes float16 outputs (Y_HALF), one
// invocation per u32 word of two elements, each element with its own row and column (a
// division per element, but any row length works, odd ones included, and no two invocations
// store into one word). The vec4 entries are float32 only.

override WG: u32 = 256;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;
// The affine index is the row's (true) or the column's (false).
override PARAM_PER_ROW: bool = true;
// Column part of the group index: 0 none, 1 the column itself, 2 column / columnGroupDiv.
override COLUMN_GROUPS: u32 = 0;

struct Params {
  count: u32,
  width: u32,
  groupDiv: u32,
  groupMod: u32,
  groupMul: u32,
  columnGroupDiv: u32,
  paramDiv: u32,
  paramMod: u32,
  // vec4s per plane of the folded channels-last table (main_vec4_pixels).
  plane: u32,
  // Invocations along a row.
  tw: u32,
  // vec4s per invocation (main_vec4_runs).
  run: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> yw: array<u32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y4: array<vec4<f32>>;

fn columnGroup(w: u32) -> u32 {
  switch COLUMN_GROUPS {
    case 0u: { return 0u; }
    case 1u: { return w; }
    default: { return w / params.columnGroupDiv; }
  }
}

// Affine of one element: (stats, weight, bias) folded to y = ((v * k - shift) - mean) * a + b.
struct Affine {
  shift: f32,
  mean: f32,
  a: f32,
  b: f32,
  k: f32,
}

fn affineOf(g: u32, k: u32) -> Affine {
  let st = stats[g];
  var a = st.z;
  var b = 0.0;
  if (HAS_WEIGHT) { a *= weight[k]; }
  if (HAS_BIAS) { b = bias[k]; }
  return Affine(st.x, st.y, a, b, st.w);
}

fn columnAffine(rowGroup: u32, w: u32) -> Affine {
  return affineOf(rowGroup + columnGroup(w), w);
}

fn apply1(v: f32, f: Affine) -> f32 {
  return activate(((v * f.k - f.shift) - f.mean) * f.a + f.b);
}

fn loadX(i: u32) -> f32 {
  if (X_HALF) { return halfAt(x[i >> 1u], i); }
  return bitcast<f32>(x[i]);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tw = params.tw;
  let tr = WG / tw;
  let rows = params.count / params.width;
  for (var r = wid.x * tr + lid / tw; r < rows; r += nwg.x * tr) {
    let rowGroup = ((r / params.groupDiv) % params.groupMod) * params.groupMul;
    let base = r * params.width;
    if (PARAM_PER_ROW) {
      let f = affineOf(rowGroup, (r / params.paramDiv) % params.paramMod);
      for (var w = lid % tw; w < params.width; w += tw) {
        y[base + w] = apply1(loadX(base + w), f);
      }
    } else {
      for (var w = lid % tw; w < params.width; w += tw) {
        y[base + w] = apply1(loadX(base + w), columnAffine(rowGroup, w));
      }
    }
  }
}

// Element i of the output, any row kind.
fn element(i: u32) -> f32 {
  let r = i / params.width;
  let w = i - r * params.width;
  let rowGroup = ((r / params.groupDiv) % params.groupMod) * params.groupMul;
  if (PARAM_PER_ROW) { return apply1(loadX(i), affineOf(rowGroup, (r / params.paramDiv) % params.paramMod)); }
  return apply1(loadX(i), columnAffine(rowGroup, w));
}

// float16 outputs: invocation t writes word t, elements 2t and 2t + 1 (the padding half of an
// odd count is 0).
@compute @workgroup_size(WG)
fn main_pairs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let i = 2u * t;
  if (i >= params.count) { return; }
  var hi = 0.0;
  if (i + 1u < params.count) { hi = element(i + 1u); }
  yw[t] = packHalves(element(i), hi);
}

// Channels-first rows: one group and one affine pair for a whole channel plane.
@compute @workgroup_size(WG)
fn main_vec4_planes(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tw = params.tw;
  let tr = WG / tw;
  let perRow = params.width / 4u;
  let rows = params.count / params.width;
  for (var r = wid.x * tr + lid / tw; r < rows; r += nwg.x * tr) {
    let f = affineOf(((r / params.groupDiv) % params.groupMod) * params.groupMul, (r / params.paramDiv) % params.paramMod);
    let base = r * perRow;
    for (var c = lid % tw; c < perRow; c += tw) {
      y4[base + c] = activate4(((x4[base + c] * f.k - f.shift) - f.mean) * f.a + f.b);
    }
  }
}

// Channels-first rows on CPU-backed adapters: invocation t takes run j = t % runs of row
// r = t / runs, `run` contiguous vec4s (the last run of a row may be shorter).
@compute @workgroup_size(WG)
fn main_vec4_runs(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let perRow = params.width / 4u;
  let runs = (perRow + params.run - 1u) / params.run;
  let r = t / runs;
  if (r >= params.count / params.width) { return; }
  let f = affineOf(((r / params.groupDiv) % params.groupMod) * params.groupMul, (r / params.paramDiv) % params.paramMod);
  let start = r * perRow + (t - r * runs) * params.run;
  let end = min(start + params.run, (r + 1u) * perRow);
  for (var i = start; i < end; i++) {
    y4[i] = activate4(((x4[i] * f.k - f.shift) - f.mean) * f.a + f.b);
  }
}

// LayerNorm/RMSNorm rows: one group per row, weight and bias indexed by the column.
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main_vec4_features(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tw = params.tw;
  let tr = WG / tw;
  let perRow = params.width / 4u;
  let rows = params.count / params.width;
  for (var r = wid.x * tr + lid / tw; r < rows; r += nwg.x * tr) {
    let st = stats[((r / params.groupDiv) % params.groupMod) * params.groupMul];
    let base = r * perRow;
    for (var c = lid % tw; c < perRow; c += tw) {
      var a = vec4<f32>(st.z);
      var b = vec4<f32>(0.0);
      if (HAS_WEIGHT) { a *= weight4[c]; }
      if (HAS_BIAS) { b = bias4[c]; }
      y4[base + c] = activate4(((x4[base + c] * st.w - st.x) - st.y) * a + b);
    }
  }
}

// Channels-last rows (one pixel's channels): five planes folded by fold_affine.wgsl. The grid's
// y is the sample, so an invocation loads its column's plane values once and then walks rows;
// the inner loop is a load, three arithmetic ops and a store.
@group(0) @binding(1) var<storage, read> planes4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main_vec4_pixels(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tw = params.tw;
  let tr = WG / tw;
  let perRow = params.width / 4u;
  let rowsPerSample = params.count / params.width / params.groupMod;
  let o = wid.y;
  let plane = params.plane;
  for (var c = lid % tw; c < perRow; c += tw) {
    let t = o * perRow + c;
    let shift = planes4[t];
    let mean = planes4[plane + t];
    let a = planes4[2u * plane + t];
    let b = planes4[3u * plane + t];
    let k = planes4[4u * plane + t];
    for (var r = o * rowsPerSample + wid.x * tr + lid / tw; r < (o + 1u) * rowsPerSample; r += nwg.x * tr) {
      let i = r * perRow + c;
      y4[i] = activate4(((x4[i] * k - shift) - mean) * a + b);
    }
  }
}
