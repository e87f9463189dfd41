/** Small canvas helpers of the demo: elements, a diverging colour map, histograms, scatter plots. */

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** Makes `zone` a drop target: highlighted while dragged over, `onDrop` gets the drop's data. */
export function dropZone(zone: HTMLElement, onDrop: (data: DataTransfer) => void): void {
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer) onDrop(e.dataTransfer);
  });
}

export function canvas(width: number, height: number, cssWidth = width): HTMLCanvasElement {
  const c = el('canvas');
  const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
  c.width = Math.round(width * dpr);
  c.height = Math.round(height * dpr);
  c.style.width = `${cssWidth}px`;
  c.style.height = `${(cssWidth / width) * height}px`;
  c.getContext('2d')!.scale(dpr, dpr);
  return c;
}

/** Blue (negative) — light gray (0) — red (positive), like matplotlib's coolwarm. */
export function diverging(t: number): [number, number, number] {
  const u = Math.max(-1, Math.min(1, t));
  const mid = [221, 221, 221];
  const end = u < 0 ? [59, 76, 192] : [180, 4, 38];
  const a = Math.abs(u);
  return [0, 1, 2].map((i) => Math.round(mid[i] + (end[i] - mid[i]) * a)) as [number, number, number];
}

/** One channel of a [C, H, W] plane set as a picture, colour-mapped symmetrically around 0. */
export function channelImage(values: Float32Array, offset: number, width: number, height: number, scale: number): HTMLCanvasElement {
  const c = el('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = diverging(values[offset + i] / scale);
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

export function colorbar(scale: number, width = 200): HTMLCanvasElement {
  const c = canvas(width, 30);
  const ctx = c.getContext('2d')!;
  for (let x = 0; x < width; x++) {
    const [r, g, b] = diverging((x / (width - 1)) * 2 - 1);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, 12);
  }
  ctx.fillStyle = '#616e7c';
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'left';
  ctx.fillText(`−${fmt(scale)}`, 0, 26);
  ctx.textAlign = 'center';
  ctx.fillText('0', width / 2, 26);
  ctx.textAlign = 'right';
  ctx.fillText(`+${fmt(scale)}`, width, 26);
  return c;
}

export function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.001 ? v.toExponential(2) : v.toPrecision(digits).replace(/\.?0+$/, '');
}

export interface Series {
  values: ArrayLike<number>;
  /** Start and stride through `values` (one channel of interleaved or planar data). */
  offset: number;
  stride: number;
  count: number;
  color: string;
  label: string;
}

/** Overlaid histograms of several series on one axis [lo, hi]. */
export function histogram(series: Series[], lo: number, hi: number, title: string, width = 300, height = 130): HTMLCanvasElement {
  const c = canvas(width, height);
  const ctx = c.getContext('2d')!;
  const bins = 48;
  const pad = { l: 8, r: 8, t: 20, b: 22 };
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const counts = series.map((s) => {
    const h = new Float64Array(bins);
    for (let i = 0; i < s.count; i++) {
      const v = s.values[s.offset + i * s.stride];
      const b = Math.floor(((v - lo) / (hi - lo || 1)) * bins);
      h[Math.max(0, Math.min(bins - 1, b))]++;
    }
    return h;
  });
  const peak = Math.max(1, ...counts.flatMap((h) => [...h]));
  ctx.fillStyle = '#1f2933';
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.fillText(title, pad.l, 13);
  ctx.strokeStyle = '#dde3ea';
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t + plotH + 0.5);
  ctx.lineTo(pad.l + plotW, pad.t + plotH + 0.5);
  ctx.stroke();
  if (lo < 0 && hi > 0) {
    const x0 = pad.l + ((0 - lo) / (hi - lo)) * plotW;
    ctx.strokeStyle = '#9aa5b1';
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(x0 + 0.5, pad.t);
    ctx.lineTo(x0 + 0.5, pad.t + plotH);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  counts.forEach((h, k) => {
    ctx.fillStyle = series[k].color;
    ctx.globalAlpha = series.length > 1 ? 0.45 : 0.8;
    for (let b = 0; b < bins; b++) {
      const bh = (h[b] / peak) * plotH;
      ctx.fillRect(pad.l + (b / bins) * plotW, pad.t + plotH - bh, plotW / bins - 0.5, bh);
    }
  });
  ctx.globalAlpha = 1;
  ctx.fillStyle = '#616e7c';
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'left';
  ctx.fillText(fmt(lo), pad.l, height - 6);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(hi), pad.l + plotW, height - 6);
  if (lo < 0 && hi > 0) {
    ctx.textAlign = 'center';
    ctx.fillText('0', pad.l + ((0 - lo) / (hi - lo)) * plotW, height - 6);
  }
  return c;
}

/** Scatter of (a, b) pairs with both axes through the origin, like the classic preprocessing figure. */
export function scatter(a: ArrayLike<number>, b: ArrayLike<number>, range: number, title: string, color: string, size = 190): HTMLCanvasElement {
  const c = canvas(size, size + 18);
  const ctx = c.getContext('2d')!;
  const top = 18;
  const map = (v: number) => ((v + range) / (2 * range)) * (size - 10) + 5;
  ctx.fillStyle = '#1f2933';
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.fillText(title, 4, 12);
  ctx.strokeStyle = '#c5ced8';
  ctx.beginPath();
  ctx.moveTo(map(0), top);
  ctx.lineTo(map(0), top + size);
  ctx.moveTo(0, top + size - map(0));
  ctx.lineTo(size, top + size - map(0));
  ctx.stroke();
  ctx.fillStyle = color;
  ctx.globalAlpha = 0.35;
  for (let i = 0; i < a.length; i++) ctx.fillRect(map(a[i]) - 1, top + size - map(b[i]) - 1, 2, 2);
  ctx.globalAlpha = 1;
  ctx.fillStyle = '#616e7c';
  ctx.font = '10.5px system-ui, sans-serif';
  ctx.fillText(`±${fmt(range)}`, size - 34, top + size - 4);
  return c;
}
