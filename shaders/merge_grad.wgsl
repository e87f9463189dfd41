// Backward stage 2: merge reduce_grad's cells into what dx and the parameter gradients need.
//
// Cells are laid out [O, R, cellC]: block o (the view's O: samples for InstanceNorm/GroupNorm,
// rows for LayerNorm/RMSNorm, 1 for BatchNorm), R partial cells, cellC channels (1 for
// LayerNorm/RMSNorm group cells, whose weights reduce_grad already applied).
//
// main_groups, one invocation per statistics group g = (o, q) of M elements: adds the cells of
// channels [q * cg, (q + 1) * cg) of block o, times weight[c] with HAS_WEIGHT, giving
// A = Σ g, B' = Σ g * d and D = Σ d with d = x - mean (mean the saved one), and writes the
// group's two table entries (grad_common.wgsl's gradTable) to table[2g], table[2g + 1].
// MODE: 0 batch; 1 running (BatchNorm inference: dx = g * rstd, no sums); 2 rms (mean 0, no
// mean(g) term, no correction).
//
// main_params, one invocation per parameter c: dbias = Σ dy and dweight = Σ dy * x̂ over blocks
// o and cells r. BN/IN/GN cells hold sums of dy and dy * d for one group, g = o * Q + c / cg:
// Σ dy * x̂ = rstd * (Σ dy * d - corr * Σ dy). SCALED cells (LayerNorm/RMSNorm column sums)
// already hold Σ dy * x̂.
// Loops over cells add with Kahan compensation (grad_common.wgsl): there may be a thousand of them.

override WG: u32 = 64;
override MODE: u32 = 0;
override HAS_WEIGHT: bool = false;
override SCALED: bool = false;
override WANT_WEIGHT: bool = true;
override WANT_BIAS: bool = true;

struct Params {
  o: u32,
  q: u32,
  r: u32,
  cellC: u32,
  cg: u32,
  count: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cells: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> table: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias: array<f32>;

@compute @workgroup_size(WG)
fn main_groups(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= params.o * params.q) { return; }
  let o = g / params.q;
  let q = g % params.q;
  var acc = NO_SUMS;
  if (MODE != 1u) {
    for (var r = 0u; r < params.r; r++) {
      for (var c = q * params.cg; c < (q + 1u) * params.cg; c++) {
        let cell = cells[(o * params.r + r) * params.cellC + c];
        var w = 1.0;
        if (HAS_WEIGHT) { w = weight[c]; }
        acc = kahan(acc, vec4<f32>(w * cell.x, w * cell.y, cell.z, 0.0));
      }
    }
  }
  var m = 0.0;
  if (MODE != 2u) { m = mean[g]; }
  let t = gradTable(acc.s.xyz, params.count, m, rstd[g]);
  table[2u * g] = t[0];
  table[2u * g + 1u] = t[1];
}

@compute @workgroup_size(WG)
fn main_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= params.cellC) { return; }
  var acc = NO_SUMS;
  for (var o = 0u; o < params.o; o++) {
    var t = vec4<f32>(0.0, 0.0, 1.0, 0.0);
    if (!SCALED) { t = table[2u * (o * params.q + c / params.cg)]; }
    for (var r = 0u; r < params.r; r++) {
      let cell = cells[(o * params.r + r) * params.cellC + c];
      var dw = cell.y;
      if (!SCALED) { dw = t.z * (cell.y - t.y * cell.x); }
      acc = kahan(acc, vec4<f32>(cell.x, dw, 0.0, 0.0));
    }
  }
  if (WANT_WEIGHT) { dweight[c] = acc.s.y; }
  if (WANT_BIAS) { dbias[c] = acc.s.x; }
}
