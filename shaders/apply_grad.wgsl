// Backward stage 3: dx, elementwise, from merge_grad's per-group table (grad_common.wgsl's
// dxOf). The tensor is walked as apply_norm.wgsl walks it (its RowLayout): rows
// of `width` contiguous floats, the group ((r / groupDiv) % groupMod) * groupMul plus the
// column's part (COLUMN_GROUPS: 0 none, 1 the column, 2 column / columnGroupDiv), the parameter
// the row's ((r / paramDiv) % paramMod, PARAM_PER_ROW) or the column. A workgroup is tw lanes
// along a row by WG / tw rows and strides over rows, so index math is per row.

override WG: u32 = 256;
override MODE: u32 = 0;
override HAS_WEIGHT: bool = false;
override PARAM_PER_ROW: bool = true;
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
  tw: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

fn columnGroup(w: u32) -> u32 {
  switch COLUMN_GROUPS {
    case 0u: { return 0u; }
    case 1u: { return w; }
    default: { return w / params.columnGroupDiv; }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tw = params.tw;
  let perGroup = WG / tw;
  let lx = lid % tw;
  let rows = params.count / params.width;
  for (var r = wid.x * perGroup + lid / tw; r < rows; r += nwg.x * perGroup) {
    let rowGroup = ((r / params.groupDiv) % params.groupMod) * params.groupMul;
    let rowParam = (r / params.paramDiv) % params.paramMod;
    let base = r * params.width;
    for (var w = lx; w < params.width; w += tw) {
      let g = rowGroup + columnGroup(w);
      var k = 1.0;
      if (HAS_WEIGHT) { k = weight[select(w, rowParam, PARAM_PER_ROW)]; }
      dx[base + w] = dxOf(dy[base + w], k, x[base + w], table[2u * g], table[2u * g + 1u]);
    }
  }
}
