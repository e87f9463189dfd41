/**
 * The demo page: `npm run demo` serves it with Vite, `npm run build:demo` builds it into
 * demo-dist/. It imports normgpu from src/ (the WGSL stages come in as `?raw` strings), and
 * serves ONNX Runtime Web's wasm runtime from node_modules as a local asset: the page never
 * reaches the network.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgsl } from '../scripts/wgsl-plugin.mjs';

const demoRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  plugins: [wgsl()],
  root: demoRoot,
  base: './',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../demo-dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // ONNX Runtime's wasm (~27 MB) is loaded only by the Benchmark tab.
    chunkSizeWarningLimit: 2048,
    assetsInlineLimit: 0,
  },
  server: { fs: { allow: [repoRoot] } },
  preview: { host: '127.0.0.1' },
  // Vite's default level: `npm run demo` prints the URL it serves at (the scripts and tests that
  // drive this config pass their own logLevel).
  logLevel: 'info',
});
