/**
 * Bundles scripts/bench-preprocess.ts (TypeScript importing the test harness) into
 * node_modules/.cache/normgpu-bench-preprocess/, which `npm run bench:preprocess` runs with node.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: at('..'),
  publicDir: false,
  logLevel: 'warn',
  build: {
    ssr: true,
    target: 'node20',
    outDir: at('../node_modules/.cache/normgpu-bench-preprocess'),
    emptyOutDir: true,
    minify: false,
    rollupOptions: {
      input: { 'bench-preprocess': at('bench-preprocess.ts') },
      output: { entryFileNames: '[name].mjs', format: 'es' },
      external: [/^node:/, 'webgpu', 'vite', 'puppeteer-core'],
    },
  },
});
