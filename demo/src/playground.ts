/**
 * Playground: an image (the bundled sample, a file, drag-and-drop or the camera) normalized
 * on the GPU with a preset; the original beside each normalized channel, per-channel
 * histograms before and after, the classic raw / zero-centered / normalized scatter, and the
 * GPU result checked against the CPU reference engine.
 */
import sampleUrl from '../assets/sample.png';
import type { DemoContext } from './context';
import { canvas, channelImage, colorbar, dropZone, el, fmt, histogram, scatter } from './draw';
import { DEFAULT_CUSTOM, normalizeImage, PRESETS, usedStatistics, type CustomParams, type PresetId } from './image-normalize';

const MAX_SIDE = 512;
const CHANNEL_COLORS: Record<string, string> = { R: '#d64545', G: '#2f9e44', B: '#3b6fd8' };

/** What the page reports after a run (read by the e2e test through `window.demo.playground`). */
export interface PlaygroundReport {
  preset: PresetId;
  source: string;
  width: number;
  height: number;
  channels: string[];
  usedMean: number[];
  usedStd: number[];
  outMean: number[];
  outStd: number[];
  outMin: number[];
  outMax: number[];
  /** max |GPU − CPU reference| over the whole output. */
  maxError: number;
  gpuMs: number;
  cpuMs: number;
  backend: string;
  /** A few output values: [channel, y, x, value]. */
  samples: [number, number, number, number][];
}

async function loadImage(src: string | Blob): Promise<ImageData> {
  const bitmap = typeof src === 'string'
    ? await createImageBitmap(await (await fetch(src)).blob())
    : await createImageBitmap(src);
  const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * k));
  const h = Math.max(1, Math.round(bitmap.height * k));
  const c = el('canvas');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return ctx.getImageData(0, 0, w, h);
}

function imageCanvas(img: ImageData): HTMLCanvasElement {
  const c = el('canvas');
  c.width = img.width;
  c.height = img.height;
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

function sized(c: HTMLCanvasElement, w: number): HTMLCanvasElement {
  c.style.width = `${w}px`;
  c.style.height = `${Math.round((w * c.height) / c.width)}px`;
  return c;
}

export function mountPlayground(root: HTMLElement, ctx: DemoContext): { ready: Promise<void> } {
  let image: ImageData | null = null;
  let source = 'sample.png';
  let preset: PresetId = 'imagenet';
  const custom: CustomParams = structuredClone(DEFAULT_CUSTOM);

  const presetSelect = el('select', { 'data-testid': 'preset' });
  for (const p of PRESETS) presetSelect.append(el('option', { value: p.id, text: p.label }));
  const formula = el('div', { class: 'muted small', 'data-testid': 'formula' });
  const fileInput = el('input', { type: 'file', accept: 'image/*' });
  const sampleBtn = el('button', { class: 'secondary', text: 'Bundled sample', 'data-testid': 'sample' });
  const cameraBtn = el('button', { class: 'secondary', text: 'Camera' });
  const drop = el('div', { class: 'dropzone', text: 'Drop an image here' });
  const status = el('div', { class: 'small muted', 'data-testid': 'pg-status' });

  // Custom preset fields.
  const num = (value: number, step: string) => el('input', { type: 'number', step, value: String(value) });
  const scaleSel = el('select');
  scaleSel.append(el('option', { value: String(1 / 255), text: '1/255 (values on [0, 1])' }), el('option', { value: '1', text: '1 (values on [0, 255])' }));
  const orderSel = el('select');
  orderSel.append(el('option', { value: 'rgb', text: 'RGB' }), el('option', { value: 'bgr', text: 'BGR' }));
  const meanIn = custom.mean.map((v) => num(v, '0.01'));
  const stdIn = custom.std.map((v) => num(v, '0.01'));
  const customBox = el('div', { class: 'controls' },
    el('label', {}, 'scale', scaleSel),
    el('label', {}, 'mean R, G, B', el('div', { class: 'row' }, ...meanIn)),
    el('label', {}, 'std R, G, B', el('div', { class: 'row' }, ...stdIn)),
    el('label', {}, 'channel order', orderSel),
  );
  customBox.hidden = true;

  const camera = el('div', { class: 'row' });
  const figures = el('div', { class: 'figures', 'data-testid': 'pg-figures' });
  const hists = el('div', { class: 'figures' });
  const classic = el('div', { class: 'figures' });
  const stats = el('div', { class: 'scroll' });
  const api = el('div', { class: 'small muted mono' });

  root.append(
    el('div', { class: 'card' },
      el('h2', { text: 'Image → normalized tensor' }),
      el('p', { class: 'intro', text: `Pick an image and a preset: the bytes go to ${ctx.engine.backend === 'webgpu' ? 'the GPU' : 'the CPU backend (no WebGPU here)'} and come out as a normalized float32 [1, 3, H, W] tensor. Each output channel is drawn as a picture (blue below 0, red above), with histograms before and after, and the result is compared with normgpu's float64 CPU reference.` }),
      el('div', { class: 'controls', style: 'margin-top:12px' },
        el('label', {}, 'image', el('div', { class: 'row' }, sampleBtn, fileInput, cameraBtn)),
        drop,
        el('label', {}, 'preset', presetSelect),
      ),
      el('div', { style: 'margin-top:8px' }, formula),
      customBox,
      camera,
      el('div', { style: 'margin-top:8px' }, status),
    ),
    el('div', { class: 'card' }, el('h3', { text: 'Original and normalized channels' }), el('div', { style: 'margin-top:10px' }, figures)),
    el('div', { class: 'card' }, el('h3', { text: 'Per-channel histograms: before (bytes 0…255) and after' }), el('div', { style: 'margin-top:10px' }, hists)),
    el('div', { class: 'card' },
      el('h3', { text: 'The classic picture: raw, zero-centered, normalized' }),
      el('p', { class: 'intro small', text: 'Each dot is a pixel, its red value against its green value (3,000 pixels). Zero-centering moves the cloud to the origin; normalization also scales each axis to unit variance. Computed on the GPU (moments + BatchNorm with the image statistics, and InstanceNorm).' }),
      el('div', { style: 'margin-top:8px' }, classic),
    ),
    el('div', { class: 'card' }, el('h3', { text: 'Statistics' }), el('div', { style: 'margin-top:10px' }, stats), el('div', { style: 'margin-top:10px' }, api)),
  );

  const readCustom = () => {
    custom.scale = Number(scaleSel.value);
    custom.order = orderSel.value as 'rgb' | 'bgr';
    custom.mean = meanIn.map((i) => Number(i.value)) as CustomParams['mean'];
    custom.std = stdIn.map((i) => Number(i.value)) as CustomParams['std'];
  };

  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = running.then(render).catch((e: unknown) => {
      status.innerHTML = '';
      status.append(el('span', { class: 'err', text: `Error: ${e instanceof Error ? e.message : String(e)}` }));
      console.error(e);
    });
    return running;
  };

  async function render(): Promise<void> {
    if (!image) return;
    const img = image;
    formula.textContent = PRESETS.find((p) => p.id === preset)!.formula;
    status.textContent = 'normalizing…';
    const t0 = performance.now();
    const g = normalizeImage(ctx.engine, img, preset, custom);
    const y = await g.y.read();
    const gpuMs = performance.now() - t0;
    const t1 = performance.now();
    const c = normalizeImage(ctx.cpu, img, preset, custom);
    const yRef = await c.y.read();
    const cpuMs = performance.now() - t1;
    const used = await usedStatistics(g, preset);
    const m = ctx.engine.moments(g.y, { axes: [0, 2, 3], correction: 0 });
    const [outMean, outVar] = await Promise.all([m.mean.read(), m.variance.read()]);
    m.mean.dispose();
    m.variance.dispose();

    // Classic picture: raw, zero-centered and standardized, from the same GPU engine.
    const z = normalizeImage(ctx.engine, img, 'zero-center');
    const s = normalizeImage(ctx.engine, img, 'standardize');
    const [zy, sy] = await Promise.all([z.y.read(), s.y.read()]);
    const calls = g.calls;
    g.dispose();
    c.dispose();
    z.dispose();
    s.dispose();

    const { width, height } = img;
    const plane = width * height;
    let maxError = 0;
    for (let i = 0; i < y.length; i++) maxError = Math.max(maxError, Math.abs(y[i] - yRef[i]));
    const outMin: number[] = [];
    const outMax: number[] = [];
    for (let ch = 0; ch < 3; ch++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = ch * plane; i < (ch + 1) * plane; i++) {
        lo = Math.min(lo, y[i]);
        hi = Math.max(hi, y[i]);
      }
      outMin.push(lo);
      outMax.push(hi);
    }
    const scale = Math.max(...outMin.map(Math.abs), ...outMax.map(Math.abs)) || 1;

    // Figures: original, then each output channel.
    figures.innerHTML = '';
    const show = Math.min(256, width);
    figures.append(el('figure', {}, sized(imageCanvas(img), show), el('figcaption', {}, el('b', { text: 'Original' }), ` ${width}×${height}`)));
    g.channels.forEach((name, ch) => {
      figures.append(el('figure', {},
        sized(channelImage(y, ch * plane, width, height, scale), show),
        el('figcaption', {}, el('b', { text: `channel ${ch}: ${name}` }), ` ${fmt(outMin[ch])} … ${fmt(outMax[ch])}`)));
    });
    figures.append(el('figure', {}, colorbar(scale), el('figcaption', { text: 'colour scale (shared by the channels)' })));

    // Histograms: bytes before (by source channel), normalized values after (output channels).
    hists.innerHTML = '';
    const srcIndex: Record<string, number> = { R: 0, G: 1, B: 2 };
    const lo = Math.min(...outMin);
    const hi = Math.max(...outMax);
    g.channels.forEach((name, ch) => {
      const color = CHANNEL_COLORS[name];
      const before = histogram([{ values: img.data, offset: srcIndex[name], stride: 4, count: plane, color, label: name }], 0, 255, `${name} before`, 260, 120);
      const after = histogram([{ values: y, offset: ch * plane, stride: 1, count: plane, color, label: name }], lo, hi, `${name} after (channel ${ch})`, 260, 120);
      hists.append(el('figure', {}, before, after));
    });

    // The classic scatter (R against G) of 3,000 pixels.
    classic.innerHTML = '';
    const step = Math.max(1, Math.floor(plane / 3000));
    const idx = Array.from({ length: Math.floor(plane / step) }, (_, i) => i * step);
    const pick = (arr: ArrayLike<number>, off: number, stride: number, k: number) => Float64Array.from(idx, (i) => arr[off + i * stride] * k);
    const raw = [pick(img.data, 0, 4, 1 / 255), pick(img.data, 1, 4, 1 / 255)];
    const zc = [pick(zy, 0, 1, 1), pick(zy, plane, 1, 1)];
    const st = [pick(sy, 0, 1, 1), pick(sy, plane, 1, 1)];
    classic.append(
      scatter(raw[0], raw[1], 1, 'raw (x / 255)', '#52606d'),
      scatter(zc[0], zc[1], 1, 'zero-centered', '#f08a24'),
      scatter(st[0], st[1], 3.5, 'normalized', '#0f9d8a'),
    );

    // Statistics table.
    const table = el('table', { class: 'data', 'data-testid': 'pg-stats' });
    table.append(el('tr', {}, ...['channel', 'mean used', 'std used', 'output mean', 'output std', 'output min', 'output max'].map((h) => el('th', { text: h }))));
    const report: PlaygroundReport = {
      preset, source, width, height, channels: g.channels, usedMean: used.mean, usedStd: used.std,
      outMean: [...outMean], outStd: [...outVar].map(Math.sqrt), outMin, outMax, maxError, gpuMs, cpuMs, backend: ctx.engine.backend,
      samples: [[0, 0, 0], [1, Math.floor(height / 2), Math.floor(width / 2)], [2, height - 1, width - 1], [0, Math.floor(height / 3), Math.floor((2 * width) / 3)]]
        .map(([ch, yy, xx]) => [ch, yy, xx, y[ch * plane + yy * width + xx]] as [number, number, number, number]),
    };
    g.channels.forEach((name, ch) => {
      const td = (key: string, v: number) => el('td', { text: fmt(v, 5), 'data-stat': key, 'data-value': String(v) });
      table.append(el('tr', { 'data-channel': String(ch) },
        el('td', { text: `${ch}: ${name}` }),
        td('usedMean', report.usedMean[ch]), td('usedStd', report.usedStd[ch]),
        td('outMean', report.outMean[ch]), td('outStd', report.outStd[ch]), td('outMin', outMin[ch]), td('outMax', outMax[ch])));
    });
    stats.innerHTML = '';
    const tolerance = 1e-4 * Math.max(1, scale);
    stats.append(table, el('dl', { class: 'kv', style: 'margin-top:12px' },
      el('dt', { text: 'GPU vs CPU reference' }),
      el('dd', {}, el('span', { class: maxError <= tolerance ? 'ok' : 'err', 'data-testid': 'pg-max-error', 'data-value': String(maxError), text: `max |Δ| = ${maxError.toExponential(2)}` }),
        ` over ${y.length.toLocaleString('en-US')} values (${maxError <= tolerance ? 'within' : 'outside'} ${tolerance.toExponential(0)})`),
      el('dt', { text: 'time' }), el('dd', { text: `${ctx.engine.backend}: ${gpuMs.toFixed(1)} ms incl. readback · CPU reference: ${cpuMs.toFixed(1)} ms` }),
      el('dt', { text: 'tensor' }), el('dd', { text: `[1, 3, ${height}, ${width}] float32, channels-first, from ${source}` }),
    ));
    api.textContent = calls;
    status.textContent = `done: ${source}, ${g.channels.join('')} order`;
    ctx.report('playground', report);
  }

  const setImage = async (src: string | Blob, name: string) => {
    image = await loadImage(src);
    source = name;
    await run();
  };

  presetSelect.addEventListener('change', () => {
    preset = presetSelect.value as PresetId;
    customBox.hidden = preset !== 'custom';
    void run();
  });
  for (const input of [scaleSel, orderSel, ...meanIn, ...stdIn]) {
    input.addEventListener('change', () => {
      readCustom();
      void run();
    });
  }
  sampleBtn.addEventListener('click', () => void setImage(sampleUrl, 'sample.png'));
  fileInput.addEventListener('change', () => {
    const f = fileInput.files?.[0];
    if (f) void setImage(f, f.name);
  });
  dropZone(drop, (data) => {
    const f = data.files?.[0];
    if (f) void setImage(f, f.name);
  });
  cameraBtn.addEventListener('click', async () => {
    camera.innerHTML = '';
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640 } });
      const video = el('video', { autoplay: '', playsinline: '', muted: '' });
      video.srcObject = stream;
      video.style.width = '240px';
      video.style.borderRadius = '6px';
      const capture = el('button', { class: 'primary', text: 'Capture' });
      const stop = () => {
        for (const t of stream.getTracks()) t.stop();
        camera.innerHTML = '';
      };
      capture.addEventListener('click', async () => {
        const c = canvas(video.videoWidth, video.videoHeight);
        c.getContext('2d')!.setTransform(1, 0, 0, 1, 0, 0);
        c.width = video.videoWidth;
        c.height = video.videoHeight;
        c.getContext('2d')!.drawImage(video, 0, 0);
        const blob = await new Promise<Blob | null>((ok) => c.toBlob(ok));
        stop();
        if (blob) await setImage(blob, 'camera');
      });
      camera.append(video, capture, el('button', { class: 'secondary', text: 'Cancel' }));
      (camera.lastChild as HTMLButtonElement).addEventListener('click', stop);
    } catch (e) {
      camera.append(el('span', { class: 'err small', text: `Camera unavailable: ${e instanceof Error ? e.message : String(e)}` }));
    }
  });

  presetSelect.value = preset;
  return { ready: setImage(sampleUrl, 'sample.png') };
}
