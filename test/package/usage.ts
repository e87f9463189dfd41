/**
 * What a user of the published package writes: type-checked (package.test.ts) under
 * `moduleResolution` bundler, node16 and nodenext without skipLibCheck, then run by Node as the
 * compiled ESM. Without the optional `webgpu` package, `'auto'` must fall back to the CPU.
 */
import { createEngine, NormGpuError, type EngineOptions, type ErrorCode, type Tensor } from 'normgpu';

const options: EngineOptions = { backend: 'auto' };
const engine = await createEngine(options);
const device: GPUDevice | null = engine.device;
const x: Tensor = engine.tensor(Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]), [2, 4]);
const y = engine.layerNorm(x, { normalizedShape: [4] });
const values: Float32Array = await y.read();

let code: ErrorCode | undefined;
try {
  await createEngine({ backend: 'webgpu' });
} catch (e) {
  if (e instanceof NormGpuError) code = e.code;
  console.log(JSON.stringify({ message: String(e) }));
}
// A second fallback in the same process: no second notice.
const again = await createEngine();
console.log(JSON.stringify({ backend: engine.backend, device: device === null, values: Array.from(values), code, again: again.backend }));
again.dispose();
y.dispose();
x.dispose();
engine.dispose();
