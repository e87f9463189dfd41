// Stage 3a (channels-last only): fold group statistics, weight and bias into per-channel planes.
//
// In channels-last tensors a row is one pixel's C channels, each channel possibly of another
// statistics group. Gathering (stats[g], weight[c], bias[c]) per element would make the apply
// stage latency-bound; instead this small stage writes, for every (sample o, channel c), the
// five numbers the apply stage needs, as five planes of O*C floats so that the apply stage
// reads four channels of each plane with one vec4 load:
//   shift[t], mean[t], a[t] = rstd * weight[c], b[t] = bias[c], k[t],   t = o*C + c,
// for y = ((x * k - shift) - mean) * a + b (k is 1 except for rescued groups, see welford.wgsl),
// where the group of (o, c) is o*Q + c / (C/Q).

override WG: u32 = 64;
override HAS_WEIGHT: bool = false;
override HAS_BIAS: bool = false;

struct Params {
  entries: u32,
  channels: u32,
  groups: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> planes: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let n = params.entries;
  if (t >= n) { return; }
  let c = t % params.channels;
  let o = t / params.channels;
  let st = stats[o * params.groups + c / (params.channels / params.groups)];
  var a = st.z;
  var b = 0.0;
  if (HAS_WEIGHT) { a *= weight[c]; }
  if (HAS_BIAS) { b = bias[c]; }
  planes[t] = st.x;
  planes[n + t] = st.y;
  planes[2u * n + t] = a;
  planes[3u * n + t] = b;
  planes[4u * n + t] = st.w;
}
