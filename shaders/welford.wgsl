// Welford / Chan statistics, shared by every reduction stage.
//
// A `Moments` value summarises a set of samples as (count, mean, M2) where M2 is the sum of
// squared deviations from the mean. `welfordPush` folds one sample in; `chanMerge` folds two
// summaries (Chan, Golub & LeVeque's parallel update). Neither ever forms E[x^2] - mean^2, so
// no catastrophic cancellation: this is what keeps inputs like 1e4 + N(0, 1) exact to float32.
//
// Callers feed samples already shifted by a per-group constant (the group's first element,
// see `groupShift`), so `mean` is a small correction to that shift and the pair (shift, mean)
// carries the group mean to about twice float32 precision.
//
// Non-finite samples follow PyTorch: the mean of a group holding +inf is +inf (NaN with NaN or
// with both infinities), its variance NaN. Once the running mean is not finite, `mean + delta/n`
// would make inf - inf = NaN of every later sample, so the mean then just adds the sample
// (inf + finite = inf, inf - inf = NaN, as the sum does); M2 turns NaN by itself.

// Set by the stage's pipeline: accumulate x^2 (RMSNorm) instead of shifted x.
override SQUARE: bool = false;

struct Moments {
  n: f32,
  mean: f32,
  m2: f32,
}

// Not NaN or an infinity; a bit test, which survives compilers that assume finite floats.
fn isFinite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn welfordPush(a: Moments, x: f32) -> Moments {
  let n = a.n + 1.0;
  let delta = x - a.mean;
  let mean = select(a.mean + x, a.mean + delta / n, isFinite(a.mean));
  return Moments(n, mean, a.m2 + delta * (x - mean));
}

// Mean only, for sums of squares (RMSNorm): the convex form keeps an infinite sample infinite.
fn meanPush(a: Moments, x: f32) -> Moments {
  let n = a.n + 1.0;
  return Moments(n, a.mean * (1.0 - 1.0 / n) + x / n, 0.0);
}

fn chanMerge(a: Moments, b: Moments) -> Moments {
  if (b.n == 0.0) { return a; }
  if (a.n == 0.0) { return b; }
  let n = a.n + b.n;
  let delta = b.mean - a.mean;
  let fb = b.n / n;
  // Convex form of the mean, as in welfordPush.
  return Moments(n, a.mean * (1.0 - fb) + b.mean * fb, a.m2 + b.m2 + delta * delta * a.n * fb);
}

// The shift of a group whose first element is `first`: that element, or 0 where it is not
// finite (an infinite shift would turn every sample into inf - inf = NaN), and 0 for SQUARE.
fn groupShift(first: f32) -> f32 {
  return select(0.0, first, isFinite(first) && !SQUARE);
}

// One sample of a reduction stage: shifted for mean/variance, squared (shift 0) for RMSNorm.
fn pushSample(a: Moments, x: f32, shift: f32) -> Moments {
  if (SQUARE) { return meanPush(a, x * x); }
  return welfordPush(a, x - shift);
}

fn push4(a: Moments, v: vec4<f32>, shift: f32) -> Moments {
  return pushSample(pushSample(pushSample(pushSample(a, v.x, shift), v.y, shift), v.z, shift), v.w, shift);
}

// Long serial loops fold samples into blocks of BLOCK, blocks into superblocks of BLOCK blocks
// and superblocks into the total, each level with Chan's merge: rounding error then grows like
// BLOCK + BLOCK + n / BLOCK^2 steps instead of n (a LayerNorm row of 2M floats: 2e-5 -> 1e-6).
const BLOCK: f32 = 64.0;

struct Blocked {
  total: Moments,
  mid: Moments,
  block: Moments,
}

const NO_MOMENTS = Moments(0.0, 0.0, 0.0);
const NO_SAMPLES = Blocked(NO_MOMENTS, NO_MOMENTS, NO_MOMENTS);

// Folds a block `b` into `a` once it is full.
fn carryBlock(a: Blocked, b: Moments) -> Blocked {
  if (b.n < BLOCK) {
    return Blocked(a.total, a.mid, b);
  }
  let mid = chanMerge(a.mid, b);
  if (mid.n >= BLOCK * BLOCK) {
    return Blocked(chanMerge(a.total, mid), NO_MOMENTS, NO_MOMENTS);
  }
  return Blocked(a.total, mid, NO_MOMENTS);
}

fn blockedPush(a: Blocked, x: f32, shift: f32) -> Blocked {
  return carryBlock(a, pushSample(a.block, x, shift));
}

fn blockedPush4(a: Blocked, v: vec4<f32>, shift: f32) -> Blocked {
  return carryBlock(a, push4(a.block, v, shift));
}

fn blockedTotal(a: Blocked) -> Moments {
  return chanMerge(chanMerge(a.total, a.mid), a.block);
}
