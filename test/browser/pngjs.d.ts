/** The part of pngjs (which ships no types) the browser tests use: sync decode to RGBA, sync encode. */
declare module 'pngjs' {
  interface PngImage {
    width: number;
    height: number;
    /** Decoded: always 8-bit RGBA, whatever the file's colour type. Encoded from: 8-bit RGBA. */
    data: Buffer;
  }
  export const PNG: {
    sync: {
      read(file: Buffer): PngImage;
      /** colorType 2 writes RGB, 6 (the default) RGBA. */
      write(png: PngImage, options?: { colorType?: 0 | 2 | 4 | 6 }): Buffer;
    };
  };
}
