// The rescue pass of a stage-1 chunk (welford.wgsl's header), shared by the three reduce_stats
// stages and linked into each, with their element load `loadX`: both use the stage's own `x`
// and `params` (q and s of the [O, P, Q, S] view, which every stage-1 variant names alike).
//
// The chunk is elements [start, end) of the run walked from `base`: element j sits at
// base + (j / s) * (Q * S) + j % s, with s = S for a group of the view and s = 1 for one column
// of it (reduce_stats_columns.wgsl). They are re-read as x * unit - shift * unit, NaN left out
// with SKIP_NAN, in Welford blocks of RESCUE_BLOCK merged by Chan: a second copy of the
// Blocked machinery in a kernel slows its hot loop.

// Element i of the stage's x: float32 bits, or a half of a word (X_HALF, epilogue.wgsl).
fn loadX(i: u32) -> f32 {
  if (X_HALF) { return halfAt(x[i >> 1u], i); }
  return bitcast<f32>(x[i]);
}

fn rescueChunk(base: u32, start: u32, end: u32, s: u32, shift: f32, unit: f32) -> Stats {
  let qs = params.q * params.s;
  let sh = shift * unit;
  var m = NO_MOMENTS;
  for (var b = start; b < end; b += RESCUE_BLOCK) {
    var block = NO_MOMENTS;
    for (var j = b; j < min(b + RESCUE_BLOCK, end); j++) {
      let p = j / s;
      let v = loadX(base + p * qs + (j - p * s));
      if (keeps(v)) {
        block = pushSample(block, v * unit, sh);
      }
    }
    m = chanMerge(m, block);
  }
  return Stats(m, sh, unit);
}
