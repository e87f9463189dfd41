import { defineConfig } from 'vitest/config';

// Library build: the engine (browser + Node), the Node accuracy CLI and the `normgpu` command
// (package.json `bin`). WGSL files are imported with `?raw`, so the shaders ship inside the
// bundle as strings; Dawn (`webgpu`) stays external.
export default defineConfig({
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    minify: false,
    sourcemap: true,
    lib: {
      entry: {
        normgpu: 'src/index.ts',
        accuracy: 'src/accuracy/runner.ts',
        'accuracy-cli': 'src/accuracy/cli.ts',
        cli: 'src/cli/normgpu.ts',
      },
      formats: ['es'],
    },
    rollupOptions: {
      external: [/^node:/, 'webgpu'],
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
