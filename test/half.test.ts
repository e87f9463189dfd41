// Host half conversions and the CPU backend's float64 activations, against known values.
import { describe, expect, it } from 'vitest';
import { fromHalfBits, halfBits, halfValue, roundHalf, toHalfBits } from '../src/half';
import { activate, erfc } from '../src/cpu/stages';

describe('half conversions', () => {
  it('round to nearest even, with subnormals, overflow and NaN', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00],
      [1e9, 0x7c00], [-Infinity, 0xfc00], [NaN, 0x7e00], [2 ** -24, 0x0001], [2 ** -25, 0x0000],
      [1.5 * 2 ** -25, 0x0001], [3 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [-3.14159, 0xc248],
    ];
    for (const [v, bits] of cases) expect(halfBits(v), `${v}`).toBe(bits);
  });

  it('every half survives bits -> value -> bits', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const back = toHalfBits(fromHalfBits(all));
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (nan) expect(Number.isNaN(halfValue(i))).toBe(true);
      else expect(back[i], i.toString(16)).toBe(i);
    }
  });

  it('rounds a float64 once (no double rounding through float32)', () => {
    // Just above the tie between 1 and 1 + 2^-10: float32 would round it to the tie itself.
    expect(roundHalf(1 + 2 ** -11 + 2 ** -40)).toBe(1 + 2 ** -10);
  });
});

describe('float64 activations', () => {
  it('erfc to float64 accuracy', () => {
    const known: [number, number][] = [
      [0.5, 0.4795001221869535], [1, 0.15729920705028513], [2.9, 4.109787809945886e-5], [3, 2.209049699858544e-5],
      [5, 1.5374597944280349e-12], [10, 2.088487583762545e-45], [-1, 1.8427007929497148], [0, 1],
    ];
    for (const [x, e] of known) expect(Math.abs(erfc(x) - e) / e, `erfc(${x})`).toBeLessThan(1e-13);
  });

  it('match PyTorch on reference points, NaN and infinities included', () => {
    expect(activate(1, 'gelu')).toBeCloseTo(0.8413447460685429, 15);
    expect(activate(-3, 'gelu')).toBeCloseTo(-0.004049694094890287, 15);
    expect(activate(1, 'gelu_tanh')).toBeCloseTo(0.8411919906082768, 15);
    expect(activate(2, 'silu')).toBeCloseTo(1.7615941559557649, 15);
    expect(activate(-1, 'relu')).toBe(0);
    expect(activate(Infinity, 'gelu')).toBe(Infinity);
    expect(activate(Infinity, 'silu')).toBe(Infinity);
    for (const a of ['relu', 'silu', 'gelu', 'gelu_tanh'] as const) expect(Number.isNaN(activate(NaN, a))).toBe(true);
  });
});
