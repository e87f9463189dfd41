/**
 * Images as the backends take them: classified and sized by `preprocess` (src/api), then read
 * by each backend its own way. A DOM image's pixels can also be read through a 2-D canvas,
 * which the CPU backend always does and the WebGPU backend does on software adapters.
 */
import { check } from './errors';

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

/** Pixels of image `i`, a DOM image, through a 2-D canvas (RGBA). */
export function readPixels(s: ExternalImage, i: number): ImagePixels {
  const g = globalThis as { OffscreenCanvas?: typeof OffscreenCanvas; document?: Document };
  let ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null = null;
  if (g.OffscreenCanvas) {
    ctx = new g.OffscreenCanvas(s.width, s.height).getContext('2d', { willReadFrequently: true });
  } else if (g.document) {
    const canvas = g.document.createElement('canvas');
    canvas.width = s.width;
    canvas.height = s.height;
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  }
  check(ctx, 'UNSUPPORTED_SOURCE', `image ${i}: no 2-D canvas to read it with`);
  ctx.drawImage(s.source as CanvasImageSource, 0, 0, s.width, s.height);
  return { data: ctx.getImageData(0, 0, s.width, s.height).data, channels: 4 };
}
