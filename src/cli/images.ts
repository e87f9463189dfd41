/**
 * Node-only image I/O for the CLI: MNIST-style IDX files (gzipped or not), PNG and JPEG
 * decoding, PNG encoding. The codecs (`pngjs`, `jpeg-js`) are imported dynamically by a
 * computed name, so no bundle of the library ever contains or resolves them.
 */
import { gunzipSync } from 'node:zlib';
import type { ImageBytes } from '../api/preprocess';

interface PngModule {
  PNG: {
    sync: {
      read(data: Uint8Array): { width: number; height: number; data: Uint8Array };
      write(png: { width: number; height: number; data: Uint8Array }, options?: { colorType?: number }): Uint8Array;
    };
  };
}
interface JpegModule {
  decode(data: Uint8Array, options: { useTArray: true; formatAsRGBA: true; maxResolutionInMP?: number; maxMemoryUsageInMB?: number }): {
    width: number; height: number; data: Uint8Array;
  };
}

async function load<T>(name: string): Promise<T> {
  let mod: { default?: T } & T;
  try {
    mod = await import(/* @vite-ignore */ name);
  } catch (e) {
    throw new Error(`PNG/JPEG files need the optional package '${name}' (npm install pngjs jpeg-js): ${String(e)}`, { cause: e });
  }
  return (mod.default ?? mod) as T;
}

const PNG_NAME = 'pngjs';
const JPEG_NAME = 'jpeg-js';

/** A parsed IDX file: `count` images of height x width x channels unsigned bytes. */
export interface IdxImages {
  count: number;
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/**
 * Parse an IDX file (MNIST's format, gzipped or not): magic 0x0000 08 NDIMS, big-endian u32
 * dims, then unsigned bytes. Accepts [N, H, W] (grayscale) and [N, H, W, C] with C = 1, 3, 4.
 */
export function parseIdx(file: Uint8Array): IdxImages {
  const bytes = file[0] === 0x1f && file[1] === 0x8b ? new Uint8Array(gunzipSync(file)) : file;
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error('not an IDX file (bad magic number)');
  if (bytes[2] !== 0x08) throw new Error(`IDX data type 0x${bytes[2].toString(16)} is not unsigned bytes (0x08)`);
  const ndims = bytes[3];
  if (ndims !== 3 && ndims !== 4) throw new Error(`IDX file has ${ndims} dims: images need [N, H, W] or [N, H, W, C]`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const [count, height, width, channels = 1] = dims;
  if (![1, 3, 4].includes(channels)) throw new Error(`IDX images have ${channels} channels, not 1, 3 or 4`);
  if (height === 0 || width === 0) throw new Error(`IDX images are ${height}x${width} pixels`);
  const offset = 4 + 4 * ndims;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - offset < size) throw new Error(`IDX file is truncated: ${bytes.length - offset} bytes of data, [${dims}] needs ${size}`);
  return { count, height, width, channels: channels as 1 | 3 | 4, data: bytes.subarray(offset, offset + size) };
}

/** Image `i` of an IDX file as preprocess input. */
export function idxImage(idx: IdxImages, i: number): ImageBytes {
  const size = idx.height * idx.width * idx.channels;
  return { data: idx.data.subarray(i * size, (i + 1) * size), width: idx.width, height: idx.height, channels: idx.channels };
}

// Decoded images past this many pixels are refused before allocation (jpeg-js takes the same
// limit; pngjs has none, so a small PNG could claim gigabytes in its header).
const MAX_MEGAPIXELS = 200;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IEND = Buffer.from('IEND');

/** Decode a PNG or JPEG file (by its signature) to RGBA bytes; errors give the reason only. */
export async function decodeImage(file: Uint8Array): Promise<ImageBytes> {
  let img: { width: number; height: number; data: Uint8Array };
  if (PNG_SIGNATURE.every((b, i) => file[i] === b)) {
    const { PNG } = await load<PngModule>(PNG_NAME);
    // pngjs reads with Buffer methods.
    const buffer = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
    // IHDR is the first chunk: width and height at bytes 16 and 20.
    if (buffer.length >= 24 && buffer.readUInt32BE(16) * buffer.readUInt32BE(20) > MAX_MEGAPIXELS * 1e6) {
      throw new Error(`PNG of ${buffer.readUInt32BE(16)} x ${buffer.readUInt32BE(20)} pixels is over the ${MAX_MEGAPIXELS}-megapixel limit`);
    }
    try {
      img = PNG.sync.read(buffer);
    } catch (e) {
      // pngjs reports a cut-off file as "read requests waiting on finished stream" and the like.
      if (buffer.lastIndexOf(IEND) < 0) throw new Error('truncated PNG data (no IEND chunk)', { cause: e });
      throw e;
    }
  } else if (file[0] === 0xff && file[1] === 0xd8) {
    const jpeg = await load<JpegModule>(JPEG_NAME);
    img = jpeg.decode(file, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 2048 });
  } else {
    throw new Error('not a PNG or JPEG file');
  }
  if (img.width === 0 || img.height === 0) throw new Error(`empty image (${img.width} x ${img.height} pixels)`);
  return { data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength), width: img.width, height: img.height, channels: 4 };
}

/** Encode [C, H, W] values on [0, 1] (C = 1 or 3) as an 8-bit PNG, clamped and rounded. */
export async function encodePng(values: Float32Array, channels: number, height: number, width: number): Promise<Uint8Array> {
  const { PNG } = await load<PngModule>(PNG_NAME);
  const pixels = height * width;
  const data = new Uint8Array(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    for (let k = 0; k < 3; k++) {
      const v = values[(channels === 1 ? 0 : k) * pixels + p];
      data[p * 4 + k] = Math.round(Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * 255);
    }
    data[p * 4 + 3] = 255;
  }
  return PNG.sync.write({ width, height, data });
}
