// Library (linked after welford.wgsl into the serial stages' vec4 entries): the statistics of
// the vec4 samples [start4, end4) of one group, summed in blocks of QUAD_BLOCK vec4s
// (welford.wgsl's `quadBlock`, each block centred on the previous block's mean) without a
// division per sample. The group is walked as runs of `s4` vec4s, one run every `qs4`, its first
// vec4 at `base4`; the stage that links this file defines `quadAt(i)`, the vec4 at index i of
// the buffer it reads. Where the plain pass fails (welford.wgsl's `rescueUnit`), the same loop
// runs again in the rescue unit.

fn quadStats(base4: u32, start4: u32, end4: u32, s4: u32, qs4: u32, shift: f32) -> Stats {
  var unit = 1.0;
  loop {
    let sh = shift * unit;
    var acc = NO_SAMPLES;
    var centre = 0.0;
    var j = start4;
    var s = j % s4;
    var i = base4 + (j / s4) * qs4 + s;
    loop {
      if (j >= end4) { break; }
      let stop = min(j + QUAD_BLOCK, end4);
      let n = f32(4u * (stop - j));
      var sums = vec4<f32>(0.0);
      var squares = vec4<f32>(0.0);
      for (; j < stop; j++) {
        let d = quadDelta(quadAt(i) * unit, sh, centre);
        sums += d;
        squares += d * d;
        i++;
        s++;
        if (s == s4) {
          s = 0u;
          i += qs4 - s4;
        }
      }
      let block = quadBlock(sums, squares, n, centre);
      acc = carryBlock(acc, block);
      centre = nextCentre(block);
    }
    let total = blockedTotal(acc);
    let next = rescueUnit(total, shift);
    if (unit != 1.0 || next == 1.0) { return Stats(total, sh, unit); }
    unit = next;
  }
}
