/**
 * Bundles the Node-side benchmark scripts (TypeScript, importing demo/bench and the test
 * harness) into node_modules/.cache/normgpu-bench/, which `npm run bench`, `npm run bench:node`
 * and `npm run bench:preprocess` then run with plain node.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgsl } from './wgsl-plugin.mjs';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  plugins: [wgsl()],
  root: at('..'),
  publicDir: false,
  logLevel: 'warn',
  build: {
    ssr: true,
    target: 'node20',
    outDir: at('../node_modules/.cache/normgpu-bench'),
    emptyOutDir: true,
    minify: false,
    sourcemap: true,
    rollupOptions: {
      input: { bench: at('bench.ts'), 'bench-node': at('bench-node.ts'), 'bench-preprocess': at('bench-preprocess.ts') },
      output: { entryFileNames: '[name].mjs', format: 'es' },
      external: [/^node:/, 'webgpu', 'vite', /^puppeteer/],
    },
  },
});
