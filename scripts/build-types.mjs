/**
 * Writes dist/normgpu.d.ts: the public types bundled into one file (dts-bundle-generator), so
 * no relative import in it needs a file extension under `moduleResolution` node16/nodenext.
 * The GPU* types in the public API come from `@webgpu/types` (a dependency), referenced here
 * because TypeScript loads global type packages outside `@types/` only when told to; engines
 * and tensors have `[Symbol.dispose]`, which a project whose `lib` stops at ES2022 lacks.
 */
import { writeFileSync } from 'node:fs';
import { generateDtsBundle } from 'dts-bundle-generator';

let dts;
try {
  [dts] = generateDtsBundle(
    [{ filePath: 'src/index.ts', output: { noBanner: true, exportReferencedTypes: false } }],
    { preferredConfigPath: 'tsconfig.build.json' },
  );
} catch (e) {
  // The type errors are printed above; the generator's stack trace adds nothing.
  console.error(`build-types: ${e.message}`);
  process.exit(1);
}
const header = ['/// <reference types="@webgpu/types" />', '/// <reference lib="esnext.disposable" />'];
writeFileSync('dist/normgpu.d.ts', `${header.join('\n')}\n${dts}`);
