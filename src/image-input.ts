/**
 * Images as the backends take them: classified and sized by `preprocess` (src/api), then read
 * by each backend its own way. A DOM image's pixels can also be read through a 2-D canvas,
 * which the CPU backend always does and the WebGPU backend does on software adapters.
 */
import { check } from './errors';
import { axisTaps, type ImageGeometry } from './plan/preprocess';

/** One source image's bytes: row-major pixels of 1, 3 or 4 bytes (extra channels ignored). */
export interface ImagePixels {
  data: Uint8Array | Uint8ClampedArray;
  channels: number;
}

/** A validated image source with its size. */
export type ImageInput =
  | { kind: 'bytes'; width: number; height: number; data: Uint8Array | Uint8ClampedArray; channels: number }
  | { kind: 'external'; width: number; height: number; source: GPUCopyExternalImageSource; video: boolean }
  | { kind: 'texture'; width: number; height: number; texture: GPUTexture };

/** A DOM image source (ImageBitmap, canvas, video, ...). */
export type ExternalImage = Extract<ImageInput, { kind: 'external' }>;

/** Whether this environment has a 2-D canvas to read DOM images with. */
export function canReadPixels(): boolean {
  const g = globalThis as { OffscreenCanvas?: unknown; document?: unknown };
  return g.OffscreenCanvas !== undefined || g.document !== undefined;
}

type Context2D = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** A 2-D context of a `width` x `height` canvas (image `i` names the error when there is none). */
function context2d(width: number, height: number, i: number): Context2D {
  const g = globalThis as { OffscreenCanvas?: typeof OffscreenCanvas; document?: Document };
  let ctx: Context2D | null = null;
  if (g.OffscreenCanvas) {
    ctx = new g.OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  } else if (g.document) {
    const canvas = g.document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  }
  check(ctx, 'UNSUPPORTED_SOURCE', `image ${i}: no 2-D canvas to read it with`);
  return ctx;
}

/**
 * One 2-D canvas reused across calls to shrink DOM images (a WebGPU engine keeps one): on a
 * software rasterizer a new canvas and context cost as much as the draw itself. Sized per call
 * and cleared before each use, so what it gives never depends on earlier calls.
 */
export class PixelCanvas {
  #ctx: Context2D | null = null;

  /** A cleared `width` x `height` context (image `i` names the error when there is no canvas). */
  context(width: number, height: number, i: number): Context2D {
    const ctx = this.#ctx;
    if (!ctx) return (this.#ctx = context2d(width, height, i));
    if (ctx.canvas.width !== width || ctx.canvas.height !== height) {
      // Resizing clears the pixels and resets the context's state.
      ctx.canvas.width = width;
      ctx.canvas.height = height;
    } else {
      // Only the pixels: the one state readPixelsScaled sets, imageSmoothingEnabled, it sets each time.
      ctx.clearRect(0, 0, width, height);
    }
    return ctx;
  }
}

/** Pixels of image `i`, a DOM image, through a 2-D canvas (RGBA). */
export function readPixels(s: ExternalImage, i: number): ImagePixels {
  const ctx = context2d(s.width, s.height, i);
  ctx.drawImage(s.source as CanvasImageSource, 0, 0, s.width, s.height);
  return { data: ctx.getImageData(0, 0, s.width, s.height).data, channels: 4 };
}

/** Whether `readPixelsScaled` can take image `s`: bytes, or a DOM image where a 2-D canvas exists. */
export function canScale(s: ImageInput): boolean {
  return s.kind === 'bytes' || (s.kind === 'external' && canReadPixels());
}

/**
 * Image `i` resized and cropped as geometry `g` says into `outW` x `outH` pixels of bytes: a
 * DOM image by the browser's 2-D canvas (its own filter), bytes here with the kernel's taps
 * (torchvision's bilinear or nearest) rounded to bytes. Only the output's pixels go further.
 * A DOM image is drawn on `canvas`, one source rectangle straight to the output size.
 */
export function readPixelsScaled(
  s: ImageInput, i: number, g: ImageGeometry, outW: number, outH: number, nearest: boolean, canvas: PixelCanvas,
): ImagePixels {
  if (s.kind === 'bytes') return { data: scaleBytes(s, g, outW, outH, nearest), channels: s.channels };
  const [kx, ky] = [g.srcW / g.resizedW, g.srcH / g.resizedH];
  const ctx = canvas.context(outW, outH, i);
  ctx.imageSmoothingEnabled = !nearest;
  ctx.drawImage((s as ExternalImage).source as CanvasImageSource, g.cropLeft * kx, g.cropTop * ky, outW * kx, outH * ky, 0, 0, outW, outH);
  return { data: ctx.getImageData(0, 0, outW, outH).data, channels: 4 };
}

function scaleBytes(s: Extract<ImageInput, { kind: 'bytes' }>, g: ImageGeometry, outW: number, outH: number, nearest: boolean): Uint8Array {
  const ch = s.channels;
  const src = s.data;
  const tx = Array.from({ length: outW }, (_, x) => axisTaps(x + g.cropLeft, g.srcW, g.resizedW, nearest));
  const out = new Uint8Array(outW * outH * ch);
  let k = 0;
  for (let y = 0; y < outH; y++) {
    const ty = axisTaps(y + g.cropTop, g.srcH, g.resizedH, nearest);
    const r0 = ty.i0 * s.width;
    const r1 = ty.i1 * s.width;
    for (const t of tx) {
      const [a, b, c, d] = [(r0 + t.i0) * ch, (r0 + t.i1) * ch, (r1 + t.i0) * ch, (r1 + t.i1) * ch];
      for (let j = 0; j < ch; j++) {
        // preprocess_image.wgsl's blend order.
        const top = (1 - t.f) * src[a + j] + t.f * src[b + j];
        const bottom = (1 - t.f) * src[c + j] + t.f * src[d + j];
        out[k++] = Math.round((1 - ty.f) * top + ty.f * bottom);
      }
    }
  }
  return out;
}
