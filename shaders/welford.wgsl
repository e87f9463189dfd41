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
//
// Squares that overflow (x^2 for RMSNorm beyond |x| ~ 1.8e19, shifted ones for variances of
// deviations beyond that, or x - shift itself beyond float32 when inputs of both signs near
// 3e38 meet) are not paid for in the hot loop: they make the mean or M2 not finite, and
// `rescueUnit` then asks the stage for a rescue pass over the same samples pre-scaled by the
// power of two RESCUE, x * RESCUE - shift * RESCUE (exact, but for samples below 2^-26 that
// no group which overflowed can notice), whose statistics cannot overflow. Samples that are NaN or infinite give the same NaN/inf in either
// pass, so they cost a second pass but no change. Squares that underflow (deviations or x
// below ~1e-19) matter only where eps cannot hide them: with RESCUE_TINY (set by the planner
// where eps < 2^-60) a variance or mean square below 2^-100 is rescued the same way with
// TINY_UNIT. Statistics of
// a rescue pass are in its unit (`Stats`): mean and shift scaled by it, M2 and means of
// squares by its square. The apply stage takes them as they are, y = ((x * k - shift) - mean)
// * rstd with k = the unit, so neither x - mean (up to twice float32's range) nor rstd (below
// 1e-38) leaves float32. The rescue pass of a stage-1 chunk is rescue_chunk.wgsl.

// Set by the stage's pipeline: accumulate x^2 (RMSNorm) instead of shifted x.
override SQUARE: bool = false;
// Set by the stage's pipeline where eps < 2^-60: rescue variances whose squares underflow.
override RESCUE_TINY: bool = false;
// Set by column statistics for the feature scalers (scikit-learn ignores NaN): stage 1 leaves
// NaN samples out of n, mean and M2.
override SKIP_NAN: bool = false;
// Set by column statistics: stage 1 also writes each partial's (min, max).
override RANGES: bool = false;

struct Moments {
  n: f32,
  mean: f32,
  m2: f32,
}

const NO_MOMENTS = Moments(0.0, 0.0, 0.0);

// Not NaN or an infinity; a bit test, which survives compilers that assume finite floats.
fn isFinite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// A bit test, as isFinite.
fn isNan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Whether a sample enters the statistics: every one but NaN with SKIP_NAN.
fn keeps(v: f32) -> bool {
  return !(SKIP_NAN && isNan(v));
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

// vec4 loops (software adapters) skip Welford's division per sample: the loop sums each block
// of QUAD_BLOCK vec4s (BLOCK samples) as d = (x - shift) - centre and d^2 in two vec4s, then
// `quadBlock` turns them into (n, centre + mean, sum d^2 - sum d * mean), carried into a
// `Blocked`. The centre is the previous block's mean (`nextCentre`), so the cancellation in a
// block's M2 is at most float32 epsilon times n * (mean - centre)^2, and those terms sum to at
// most 4 x the group's M2 (differences of consecutive block means): as accurate as Welford, a
// fraction of the work. Non-finite samples give what Welford gives (a block with inf: mean inf,
// M2 NaN; a non-finite mean is never a centre). For SQUARE, d = x and the block is the mean of
// its x^2.
const QUAD_BLOCK: u32 = 16u;

fn quadBlock(s: vec4<f32>, q: vec4<f32>, n: f32, centre: f32) -> Moments {
  let sq = (q.x + q.y) + (q.z + q.w);
  if (SQUARE) { return Moments(n, sq / n, 0.0); }
  let sum = (s.x + s.y) + (s.z + s.w);
  let mean = sum / n;
  let m2 = sq - sum * mean;
  // A tiny negative M2 from rounding is 0 (NaN stays NaN).
  return Moments(n, centre + mean, select(m2, 0.0, m2 < 0.0));
}

fn nextCentre(block: Moments) -> f32 {
  return select(0.0, block.mean, isFinite(block.mean) && !SQUARE);
}

// d of sample vector v: shifted and centred, or v itself for SQUARE.
fn quadDelta(v: vec4<f32>, shift: f32, centre: f32) -> vec4<f32> {
  if (SQUARE) { return v; }
  return (v - shift) - centre;
}

fn blockedTotal(a: Blocked) -> Moments {
  return chanMerge(chanMerge(a.total, a.mid), a.block);
}

// ---- Rescue passes (see the header) ----

const RESCUE: f32 = 0x1p-100f;
const UNRESCUE: f32 = 0x1p100f;
const TINY_UNIT: f32 = 0x1p64f;
// Samples per Welford block of a rescue loop; the blocks merge with chanMerge.
const RESCUE_BLOCK: u32 = 64u;

// The unit of the rescue pass that plain statistics `m` of samples shifted by `shift` need:
// RESCUE where they are not finite, TINY_UNIT (with RESCUE_TINY) where the variance (the mean
// square for SQUARE) is below 2^-100 and every x * TINY_UNIT stays finite (for variances,
// |shift| and |mean| below 2^60: a larger group with such a spread holds one value repeated,
// whose M2 of 0 is exact), else 1 (none).
fn rescueUnit(m: Moments, shift: f32) -> f32 {
  if (!statsFinite(m)) { return RESCUE; }
  if (!RESCUE_TINY || !statsTiny(m)) { return 1.0; }
  return select(1.0, TINY_UNIT, SQUARE || (abs(shift) < 0x1p60f && abs(m.mean) < 0x1p60f));
}

// Whether statistics are finite (M2 is not kept for SQUARE).
fn statsFinite(m: Moments) -> bool {
  return isFinite(m.mean) && (SQUARE || isFinite(m.m2));
}

// Whether the variance (the mean square for SQUARE) is below 2^-100.
fn statsTiny(m: Moments) -> bool {
  if (SQUARE) { return m.mean < 0x1p-100f; }
  return m.m2 < m.n * 0x1p-100f;
}

// 1 / unit, exactly.
fn inverseUnit(unit: f32) -> f32 {
  if (unit == RESCUE) { return UNRESCUE; }
  if (unit == TINY_UNIT) { return 0x1p-64f; }
  return 1.0;
}

// The binary exponent of a unit.
fn unitExp(unit: f32) -> i32 {
  if (unit == RESCUE) { return -100; }
  if (unit == TINY_UNIT) { return 64; }
  return 0;
}

// v * 2^k, exactly, by exponent arithmetic. Unit conversions need factors such as 2^-200 that
// float32 cannot hold, and a compiler allowed to reassociate folds (v * 2^-100) * 2^-100 into
// v * 0. Results below the normal range flush to (signed) 0, above it give inf; 0, inf and NaN
// stay.
fn ldexpExact(v: f32, k: i32) -> f32 {
  var x = v;
  var e = k;
  if ((bitcast<u32>(x) & 0x7f800000u) == 0u) {
    // Zero or subnormal: one exact product brings a subnormal into the normal range.
    x = x * 0x1p64f;
    e -= 64;
  }
  let bits = bitcast<u32>(x);
  let biased = i32((bits >> 23u) & 0xffu);
  if (biased == 0 || biased == 255) { return x; }
  let sign = bits & 0x80000000u;
  let scaled = biased + e;
  if (scaled <= 0) { return bitcast<f32>(sign); }
  if (scaled >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  return bitcast<f32>((bits & 0x807fffffu) | (u32(scaled) << 23u));
}

// A group's (or a chunk's) statistics in a unit (1, RESCUE or TINY_UNIT): those of the samples
// x * unit - shift, with `shift` the scaled shift (0 for SQUARE, whose mean is then the mean
// of (x * unit)^2).
struct Stats {
  m: Moments,
  shift: f32,
  unit: f32,
}

// A partial of stage 1 as stored: (n * unit, mean, M2, shift). The count carries the unit;
// the ranges of n (below 2^32), n * RESCUE and n * TINY_UNIT never overlap.
fn partialOf(s: Stats) -> vec4<f32> {
  return vec4<f32>(s.m.n * s.unit, s.m.mean, s.m.m2, s.shift);
}

fn statsOf(p: vec4<f32>) -> Stats {
  var unit = 1.0;
  if (p.x < 0x1p-60f) { unit = RESCUE; }
  if (p.x >= 0x1p40f) { unit = TINY_UNIT; }
  return Stats(Moments(p.x * inverseUnit(unit), p.y, p.z), p.w, unit);
}

// Statistics `s` in another unit: mean and shift scaled by unit / s.unit, M2 by its square.
fn statsIn(s: Stats, unit: f32) -> Stats {
  if (s.unit == unit) { return s; }
  let k = unitExp(unit) - unitExp(s.unit);
  return Stats(Moments(s.m.n, ldexpExact(s.m.mean, k), ldexpExact(s.m.m2, 2 * k)), ldexpExact(s.shift, k), unit);
}

// Chan merge of statistics in one unit whose samples were shifted by different constants: b's
// mean is rebased onto a's shift, (shift_b - shift_a) + mean_b, a difference on the scale of
// the spread for samples of one group, so the pair (shift, mean) stays exact. An empty a takes
// b whole, shift included.
fn mergeShifted(a: Stats, b: Stats) -> Stats {
  if (b.m.n == 0.0) { return a; }
  if (a.m.n == 0.0) { return b; }
  let m = chanMerge(a.m, Moments(b.m.n, (b.shift - a.shift) + b.m.mean, b.m.m2));
  return Stats(m, a.shift, a.unit);
}

// Merge of partials in any units, as finalize_stats merges a group's: in the coarser unit of
// the two (plain where both are), and again in RESCUE where that is not finite (plain
// partials whose shifts lie far apart overflow only when merged).
fn mergeUnits(a: Stats, b: Stats) -> Stats {
  if (b.m.n == 0.0) { return a; }
  if (a.m.n == 0.0) { return b; }
  let unit = min(a.unit, b.unit);
  let m = mergeShifted(statsIn(a, unit), statsIn(b, unit));
  if (unit == RESCUE || statsFinite(m.m)) { return m; }
  return mergeShifted(statsIn(a, RESCUE), statsIn(b, RESCUE));
}

// (min, max) of a partial's samples for RANGES, NaN left out (the CPU twin's comparisons skip
// it too); NO_RANGE, min > max, while there is none.
const NO_RANGE = vec2<f32>(1.0, 0.0);

fn rangePush(r: vec2<f32>, v: f32) -> vec2<f32> {
  if (isNan(v)) { return r; }
  if (r.x > r.y) { return vec2<f32>(v, v); }
  return vec2<f32>(min(r.x, v), max(r.y, v));
}

fn rangeMerge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  if (b.x > b.y) { return a; }
  if (a.x > a.y) { return b; }
  return vec2<f32>(min(a.x, b.x), max(a.y, b.y));
}

// The affine of the apply stage, (shift, mean, rstd / k, k): y = ((x * k - shift) - mean) *
// (rstd / k), from a group's statistics over n samples; k is the statistics' unit. For SQUARE
// rstd = 1 / sqrt(mean(x^2) + eps) and shift = mean = 0.
fn normAffine(s: Stats, n: f32, eps: f32) -> vec4<f32> {
  // eps in unit^2; plain groups skip the exponent arithmetic (it slows barrier kernels' tails).
  var e = eps;
  if (s.unit != 1.0) { e = ldexpExact(eps, 2 * unitExp(s.unit)); }
  if (SQUARE) { return vec4<f32>(0.0, 0.0, 1.0 / sqrt(s.m.mean + e), s.unit); }
  return vec4<f32>(s.shift, s.m.mean, 1.0 / sqrt(s.m.m2 / n + e), s.unit);
}

// The group mean and M2 / dof in plain units (either may overflow to inf, as the true values do).
fn plainMoments(s: Stats, dof: f32) -> vec2<f32> {
  let k = unitExp(s.unit);
  return vec2<f32>(ldexpExact(s.shift + s.m.mean, -k), ldexpExact(s.m.m2 / dof, -2 * k));
}
