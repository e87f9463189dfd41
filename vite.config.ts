import { defineConfig } from 'vitest/config';
import { wgsl } from './scripts/wgsl-plugin.mjs';

/** Library modules: everything under src/ but the CLI and the accuracy runner. */
const isLibraryModule = (id: string) => /[\\/]src[\\/]/.test(id) && !/[\\/]src[\\/](cli|accuracy)[\\/]/.test(id);

// Library build: the engine (browser + Node), the `normgpu` command (package.json `bin`) and
// the accuracy runner (`npm run accuracy`, the golden browser test; not published). WGSL files
// are imported with `?raw`, so the shaders ship inside the bundle as strings (without comments:
// scripts/wgsl-plugin.ts, also what the tests compile); Dawn (`webgpu`) stays external. Types come from scripts/build-types.mjs (`npm run build`).
export default defineConfig({
  plugins: [wgsl()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    minify: false,
    // Not published: readable unminified output is its own map.
    sourcemap: false,
    lib: {
      entry: {
        normgpu: 'src/index.ts',
        accuracy: 'src/accuracy/runner.ts',
        'accuracy-cli': 'src/accuracy/cli.ts',
        cli: 'src/cli/normgpu.ts',
      },
      formats: ['es'],
    },
    rolldownOptions: {
      external: [/^node:/, 'webgpu'],
      // The library's modules form one group, which holds the `normgpu` entry: so the whole
      // library is dist/normgpu.js, and the CLI and the runner import it from there, instead of
      // all three importing a shared chunk named after whichever module came first.
      preserveEntrySignatures: 'allow-extension',
      output: {
        chunkFileNames: 'chunks/[name]-[hash].js',
        codeSplitting: { groups: [{ name: 'normgpu', test: isLibraryModule }] },
      },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup-env.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Dawn and Chromium each want the machine to themselves on 2 cores.
    fileParallelism: false,
    reporters: ['default'],
  },
});
