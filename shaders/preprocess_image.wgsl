// Image to tensor in one dispatch: resize, center crop, horizontal flip, channel order, scale
// and (x * scale - mean) / std, from uploaded bytes (`main_bytes`) or from a texture array that
// browser images were copied into (`main_texture`). The two entry points share everything but
// the fetch of one source pixel.
//
// One invocation per output pixel (n, oy, ox); images span y and z, pixels stride along x. Each
// image of the batch has its own geometry in `images[n]` (its source size, the size it is
// resized to and the crop offset in the resized image), so a batch may mix sizes as long as all
// come out at outW x outH. Output pixel (ox, oy) is pixel (cx + cropLeft, oy + cropTop) of the
// resized image, cx = ox, or outW - 1 - ox with FLIP, and is sampled from the source as below.
//
// Sampling convention: torchvision `Resize(antialias=False)` on tensors, i.e. PyTorch
// `interpolate(align_corners=False)` with half-pixel centers. Along an axis resized from `in`
// to `out` pixels, output pixel d reads source coordinate
//     src = (d + 0.5) * in / out - 0.5, clamped at 0,
// blending pixels i0 = floor(src) and i1 = min(i0 + 1, in - 1) with weight src - i0 on i1, and
// the two axes blended as PyTorch does: (1-fy) * ((1-fx) v00 + fx v01) + fy * ((1-fx) v10 + fx v11).
// NEAREST takes pixel min(floor((d + 0.5) * in / out), in - 1), which is PyTorch's
// 'nearest-exact', PIL's NEAREST and torchvision's NEAREST_EXACT (torchvision's tensor NEAREST is
// the legacy floor(d * in / out)). Coordinates are exact integer arithmetic on
// src = ((2d + 1) * in - out) / (2 * out): floor and remainder carry no rounding, the fraction is
// one f32 division. Without a resize (in == out) every weight is 0 and the pixel is read as is.
//
// Channels: the RGB of a pixel (a 1-channel source gives R = G = B) become output channel c as
// dot(mix[c], rgb): rows of the identity for RGB, reversed for BGR, ITU-R 601 luma
// (0.299, 0.587, 0.114) for grayscale (GRAY: one output channel); a 1-channel source passes
// its value through unmixed. mean and std are per output channel (the host reorders them),
// and the value is written as (v * scale - mean[c]) / std[c] at [n, c, oy, ox] or, with
// CHANNELS_LAST, [n, oy, ox, c]. All three channels are computed as one vec3: no loop and no
// dynamic indexing of the uniforms (costly on software adapters).

override WG: u32 = 64;
override NEAREST: bool = false;
override FLIP: bool = false;
// One invocation per output row, looping over its pixels (software adapters), instead of one
// per pixel.
override ROWS: bool = false;
// Some image of the batch is resized: without it the blend is compiled out (software adapters
// run both sides of a branch).
override RESAMPLE: bool = true;
override CHANNELS_LAST: bool = false;
// One output channel (grayscale); else three.
override GRAY: bool = false;
// main_texture: texels are 8-bit unorm, so v * 255 is rounded back to the exact byte.
override UNORM8: bool = true;

struct Params {
  outW: u32,
  outH: u32,
  images: u32,
  // (one u32 of padding: mix is 16-byte aligned)
  mix: array<vec4<f32>, 3>,
  // The mean as a float pair (high part, residue), so means such as Caffe's 123.68 subtract
  // to float64 accuracy from exact integer values.
  meanHi: vec4<f32>,
  meanLo: vec4<f32>,
  stdev: vec4<f32>,
  scale: f32,
}

struct Image {
  srcW: u32,
  srcH: u32,
  // Bytes per pixel: 1, 3 or 4; in a texture 4, or 1 for a layer made from a 1-channel image.
  srcChannels: u32,
  // Index of the image's first byte in `bytes` (main_bytes); its layer (main_texture).
  offset: u32,
  resizedW: u32,
  resizedH: u32,
  cropLeft: u32,
  cropTop: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> images: array<Image>;
// Storage buffers have no u8: four bytes per word, little-endian.
@group(0) @binding(2) var<storage, read> bytes: array<u32>;
@group(0) @binding(2) var source: texture_2d_array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

struct Taps {
  i0: u32,
  i1: u32,
  f: f32,
}

fn axisTaps(d: u32, inSize: u32, outSize: u32) -> Taps {
  if (inSize == outSize) {
    return Taps(d, d, 0.0);
  }
  let t = (2u * d + 1u) * inSize;
  let den = 2u * outSize;
  if (NEAREST) {
    let i = min(t / den, inSize - 1u);
    return Taps(i, i, 0.0);
  }
  if (t <= outSize) {
    return Taps(0u, 0u, 0.0);
  }
  let num = t - outSize;
  let i0 = num / den;
  return Taps(i0, min(i0 + 1u, inSize - 1u), f32(num - i0 * den) / f32(den));
}

fn blend(tx: Taps, ty: Taps, v00: vec3<f32>, v01: vec3<f32>, v10: vec3<f32>, v11: vec3<f32>) -> vec3<f32> {
  let w0 = 1.0 - tx.f;
  let h0 = 1.0 - ty.f;
  return h0 * (w0 * v00 + tx.f * v01) + ty.f * (w0 * v10 + tx.f * v11);
}

fn store(n: u32, p: u32, rgb: vec3<f32>, single: bool) {
  let pixels = params.outW * params.outH;
  var v = vec3<f32>(dot(params.mix[0].xyz, rgb), dot(params.mix[1].xyz, rgb), dot(params.mix[2].xyz, rgb));
  if (single) {
    v = vec3<f32>(rgb.x);
  }
  let out = ((v * params.scale - params.meanHi.xyz) - params.meanLo.xyz) / params.stdev.xyz;
  if (GRAY) {
    y[n * pixels + p] = out.x;
  } else if (CHANNELS_LAST) {
    let i = (n * pixels + p) * 3u;
    y[i] = out.x;
    y[i + 1u] = out.y;
    y[i + 2u] = out.z;
  } else {
    let i = n * 3u * pixels + p;
    y[i] = out.x;
    y[i + pixels] = out.y;
    y[i + 2u * pixels] = out.z;
  }
}

// The image of this invocation's y/z workgroup, or none past the batch.
fn imageIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y + wid.z * nwg.y;
}

// Work items of one image: pixels, or with ROWS whole output rows.
fn itemCount() -> u32 {
  return select(params.outW * params.outH, params.outH, ROWS);
}

// Output row and column range [x.y, x.z) of work item u.
fn itemSpan(u: u32) -> vec3<u32> {
  if (ROWS) {
    return vec3<u32>(u, 0u, params.outW);
  }
  let oy = u / params.outW;
  let ox = u - oy * params.outW;
  return vec3<u32>(oy, ox, ox + 1u);
}

fn sourceX(ox: u32) -> u32 {
  return select(ox, params.outW - 1u - ox, FLIP);
}

fn loadByte(i: u32) -> f32 {
  return f32((bytes[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
}

fn bytesPixel(img: Image, x: u32, yy: u32) -> vec3<f32> {
  let i = img.offset + (yy * img.srcW + x) * img.srcChannels;
  if (img.srcChannels == 1u) {
    return vec3<f32>(loadByte(i));
  }
  return vec3<f32>(loadByte(i), loadByte(i + 1u), loadByte(i + 2u));
}

@compute @workgroup_size(WG)
fn main_bytes(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let n = imageIndex(wid, nwg);
  if (n >= params.images) { return; }
  let img = images[n];
  let single = img.srcChannels == 1u;
  for (var u = gid.x; u < itemCount(); u += nwg.x * WG) {
    let span = itemSpan(u);
    let ty = axisTaps(span.x + img.cropTop, img.srcH, img.resizedH);
    for (var ox = span.y; ox < span.z; ox++) {
      let tx = axisTaps(sourceX(ox) + img.cropLeft, img.srcW, img.resizedW);
      var rgb = bytesPixel(img, tx.i0, ty.i0);
      if (RESAMPLE && !NEAREST && (tx.f != 0.0 || ty.f != 0.0)) {
        rgb = blend(tx, ty, rgb, bytesPixel(img, tx.i1, ty.i0), bytesPixel(img, tx.i0, ty.i1), bytesPixel(img, tx.i1, ty.i1));
      }
      store(n, span.x * params.outW + ox, rgb, single);
    }
  }
}

fn texel(layer: u32, x: u32, yy: u32) -> vec3<f32> {
  let v = textureLoad(source, vec2<u32>(x, yy), layer, 0).rgb * 255.0;
  return select(v, round(v), UNORM8);
}

@compute @workgroup_size(WG)
fn main_texture(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let n = imageIndex(wid, nwg);
  if (n >= params.images) { return; }
  let img = images[n];
  let layer = img.offset;
  let single = img.srcChannels == 1u;
  for (var u = gid.x; u < itemCount(); u += nwg.x * WG) {
    let span = itemSpan(u);
    let ty = axisTaps(span.x + img.cropTop, img.srcH, img.resizedH);
    for (var ox = span.y; ox < span.z; ox++) {
      let tx = axisTaps(sourceX(ox) + img.cropLeft, img.srcW, img.resizedW);
      var rgb = texel(layer, tx.i0, ty.i0);
      if (RESAMPLE && !NEAREST && (tx.f != 0.0 || ty.f != 0.0)) {
        rgb = blend(tx, ty, rgb, texel(layer, tx.i1, ty.i0), texel(layer, tx.i0, ty.i1), texel(layer, tx.i1, ty.i1));
      }
      store(n, span.x * params.outW + ox, rgb, single);
    }
  }
}
