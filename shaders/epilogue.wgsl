// Element types and epilogues, shared by the stages that read inputs or write outputs.
//
// float16 tensors are stored as IEEE halves, two per u32 (element i in bits 16 * (i & 1) of
// word i >> 1), so they run on every adapter, with or without the `shader-f16` feature. Stages
// bind their tensors as u32 words and read one element with X_HALF selecting the decode:
// `bitcast<f32>(x[i])` for float32, `halfAt(x[i >> 1], i)` for float16 (unpack2x16float: every
// half, subnormals and infinities included, is exact in f32). Arithmetic stays float32.
// Halves are encoded with integer operations rather than pack2x16float, which WGSL leaves
// indeterminate beyond the half range (we need +-Inf) and free in its rounding: `halfBits`
// rounds to nearest even, overflows to infinity and keeps NaN, as the CPU backend does. A u32
// word holds two elements, so a stage that writes halves writes both halves of a word from one
// invocation: no two invocations ever store into the same word.
//
// ACTIVATION is applied after the affine: 1 relu, 2 silu, 3 gelu (erf), 4 gelu (tanh), as
// PyTorch's F.relu, F.silu, F.gelu and F.gelu(approximate='tanh'). WGSL has no erf: gelu uses
// erfc from Numerical Recipes' Chebyshev fit (relative error below 1.2e-7), written so that
// neither tail cancels; the sigmoid forms never overflow exp.

// Input, residual and sum stored as halves.
override X_HALF: bool = false;
// Output stored as halves.
override Y_HALF: bool = false;
// 0 none, 1 relu, 2 silu, 3 gelu, 4 gelu_tanh.
override ACTIVATION: u32 = 0u;

// Element i of half words, `word` = words[i >> 1].
fn halfAt(word: u32, i: u32) -> f32 {
  return unpack2x16float(word)[i & 1u];
}

// The half bits nearest to v (ties to even; +-Inf beyond 65520, NaN kept).
fn halfBits(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a < 0x38800000u) {
    // Subnormal half: units of 2^-24, below 2^-25 nothing is left.
    if (a < 0x33000000u) { return sign; }
    let s = 126u - (a >> 23u);
    let m = (a & 0x7fffffu) | 0x800000u;
    var q = m >> s;
    let rem = m & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }
    return sign | q;
  }
  return sign | (((a + 0xfffu + ((a >> 13u) & 1u)) >> 13u) - 0x1c000u);
}

// Two elements as one word of halves.
fn packHalves(lo: f32, hi: f32) -> u32 {
  return halfBits(lo) | (halfBits(hi) << 16u);
}

// v * sigmoid(z), with exp never overflowing.
fn timesSigmoid(v: f32, z: f32) -> f32 {
  let e = exp(-abs(z));
  return select(v * e, v, z >= 0.0) / (1.0 + e);
}

// erfc(z) for z >= 0 (Numerical Recipes' erfcc).
fn erfcPositive(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
    + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
}

fn activate(v: f32) -> f32 {
  switch ACTIVATION {
    case 1u: { return select(v, 0.0, v < 0.0); }
    case 2u: { return timesSigmoid(v, v); }
    case 3u: {
      // 0.5 v (1 + erf(v / sqrt 2)) = v (1 - 0.5 erfc(v / sqrt 2)) = 0.5 v erfc(-v / sqrt 2).
      let c = erfcPositive(abs(v) * 0.70710678118654752);
      return select(0.5 * v * c, v * (1.0 - 0.5 * c), v >= 0.0);
    }
    case 4u: {
      // 0.5 v (1 + tanh(u)) = v * sigmoid(2u).
      return timesSigmoid(v, 1.5957691216057308 * (v + 0.044715 * v * v * v));
    }
    default: { return v; }
  }
}

fn activate4(v: vec4<f32>) -> vec4<f32> {
  if (ACTIVATION == 0u) { return v; }
  return vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
}
