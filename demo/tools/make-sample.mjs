// Writes demo/assets/sample.png: a procedurally drawn 256x256 RGB landscape (sky, sun, two
// mountain ranges, a lake with reflections, a meadow), the playground's bundled sample.
// Deterministic; run `node demo/tools/make-sample.mjs` to regenerate it.
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const W = 256;
const H = 256;

// Value noise with smooth interpolation, seeded.
function noise2(seed) {
  const perm = new Uint8Array(512);
  let s = seed >>> 0;
  const p = Array.from({ length: 256 }, (_, i) => i);
  for (let i = 255; i > 0; i--) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  for (let i = 0; i < 512; i++) perm[i] = p[i & 255];
  const val = (x, y) => perm[(perm[x & 255] + y) & 511] / 255;
  const fade = (t) => t * t * (3 - 2 * t);
  return (x, y) => {
    const xi = Math.floor(x), yi = Math.floor(y);
    const xf = fade(x - xi), yf = fade(y - yi);
    const a = val(xi, yi), b = val(xi + 1, yi), c = val(xi, yi + 1), d = val(xi + 1, yi + 1);
    return a + (b - a) * xf + (c - a) * yf + (a - b - c + d) * xf * yf;
  };
}
const n1 = noise2(7);
const n2 = noise2(99);
const fbm = (n, x, y, oct = 4) => {
  let v = 0, amp = 0.5, f = 1;
  for (let o = 0; o < oct; o++) { v += amp * n(x * f, y * f); amp /= 2; f *= 2; }
  return v;
};
const mix = (a, b, t) => a.map((v, i) => v + (b[i] - v) * t);
const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));

const horizon = 150;
const sun = { x: 178, y: 70, r: 20 };
const ridgeFar = (x) => 150 - 150 * Math.pow(fbm(n1, x / 45, 3.1, 5), 1.4);
const ridgeNear = (x) => 150 - 70 * Math.pow(fbm(n2, x / 30, 8.7, 5), 1.3);

function sky(x, y) {
  const t = y / horizon;
  let c = mix([40, 90, 190], [250, 190, 140], Math.pow(t, 1.6));
  const d = Math.hypot(x - sun.x, y - sun.y);
  const glow = Math.exp(-d / 38);
  c = mix(c, [255, 236, 170], glow * 0.8);
  if (d < sun.r) c = mix([255, 246, 205], [255, 214, 120], d / sun.r);
  const cloud = fbm(n1, x / 30 + 11, y / 12, 4);
  if (y < 90 && cloud > 0.58) c = mix(c, [255, 250, 245], Math.min(1, (cloud - 0.58) * 5) * 0.85);
  return c;
}

function land(x, y) {
  if (y < ridgeFar(x)) return null;
  if (y < ridgeNear(x)) {
    const shade = fbm(n2, x / 12, y / 12, 3);
    const snow = y < 92 + 6 * n1(x / 5, 1.3);
    return snow ? [235, 238, 245] : mix([92, 98, 140], [130, 120, 150], shade);
  }
  if (y < horizon) {
    const shade = fbm(n1, x / 8, y / 8, 3);
    return mix([38, 88, 52], [70, 120, 60], shade);
  }
  return null;
}

const px = new Uint8Array(W * H * 3);
for (let y = 0; y < H; y++) {
  for (let x = 0; x < W; x++) {
    let c;
    if (y < horizon) {
      c = land(x, y) ?? sky(x, y);
    } else if (y < 200) {
      // Lake: the reflection of what lies above the horizon, darkened and rippled.
      const ry = 2 * horizon - y - 1;
      const rx = x + Math.round(3 * Math.sin(y * 0.9 + x * 0.05));
      const above = land(Math.max(0, Math.min(W - 1, rx)), ry) ?? sky(rx, ry);
      c = mix(above, [20, 60, 110], 0.35 + 0.25 * (y - horizon) / 50);
    } else {
      // Meadow with flowers.
      const g = fbm(n2, x / 6, y / 6, 4);
      c = mix([70, 130, 40], [150, 170, 60], g);
      const f = n1(x * 1.7, y * 1.7);
      if (f > 0.93) c = (x + y) % 3 === 0 ? [230, 60, 80] : (x + y) % 3 === 1 ? [250, 220, 60] : [240, 240, 250];
    }
    const grain = (n2(x * 3.3, y * 3.3) - 0.5) * 10;
    const i = (y * W + x) * 3;
    px[i] = clamp(c[0] + grain);
    px[i + 1] = clamp(c[1] + grain);
    px[i + 2] = clamp(c[2] + grain);
  }
}

// PNG: 8-bit RGB, each row with the filter (None/Sub/Up/Average/Paeth) that compresses best.
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
};
const stride = W * 3;
const raw = Buffer.alloc((stride + 1) * H);
const paeth = (a, b, c) => {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};
for (let y = 0; y < H; y++) {
  const row = px.subarray(y * stride, (y + 1) * stride);
  const prev = y ? px.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
  let best = null;
  for (let f = 0; f < 5; f++) {
    const out = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? row[i - 3] : 0, b = prev[i], c = i >= 3 ? prev[i - 3] : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f];
      out[i] = (row[i] - pred) & 255;
    }
    const cost = out.reduce((s, v) => s + (v < 128 ? v : 256 - v), 0);
    if (!best || cost < best.cost) best = { f, out, cost };
  }
  raw[y * (stride + 1)] = best.f;
  raw.set(best.out, y * (stride + 1) + 1);
}
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(W, 0);
ihdr.writeUInt32BE(H, 4);
ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolor, deflate, adaptive filters, no interlace
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', ihdr),
  chunk('IDAT', deflateSync(raw, { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
const out = new URL('../assets/sample.png', import.meta.url);
writeFileSync(out, png);
console.log(`wrote ${out.pathname} (${png.length} bytes)`);
