/**
 * Adapters without the `subgroups` feature get the workgroup-memory merge (merge_workgroup.wgsl)
 * in reduce_stats and normalize_rows. SwiftShader has subgroups, so this test makes a device
 * without the feature, hands it to the engine, forces the GPU-shaped kernels and checks them
 * against the float64 CPU reference. Tolerance: 1e-5 scaled error, as everywhere.
 */
import { create, globals } from 'webgpu';
import { expect, test } from 'vitest';
import { createEngine } from '../src/index';

Object.assign(globalThis, globals);
// Dawn's GPU object must stay reachable for the life of the process.
const gpu = ((globalThis as Record<string, unknown>).__normgpuTestDawn ??= create([])) as GPU;

const scaledError = (a: Float32Array, e: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i]) / (1 + Math.abs(e[i]))), 0);

test('workgroup-memory merge path matches the CPU reference', async () => {
  const adapter = await gpu.requestAdapter();
  expect(adapter, 'a WebGPU adapter (Dawn)').toBeTruthy();
  const device = await adapter!.requestDevice({ label: 'no-subgroups' });
  expect(device.features.has('subgroups')).toBe(false);
  const engine = await createEngine({ device, kernels: 'parallel' });
  const cpu = await createEngine({ backend: 'cpu' });

  const shape = [2, 16, 24, 24];
  const data = Float32Array.from({ length: 2 * 16 * 24 * 24 }, (_, i) => 1e4 + Math.sin(i * 1.7) * 2);
  const cases: [string, object, string][] = [
    ['batchNorm', { training: true }, 'rows+workgroup-memory'],
    ['layerNorm', { normalizedShape: [16, 24, 24] }, 'rows+workgroup-memory'],
    ['instanceNorm', {}, 'fused-rows'],
    ['groupNorm', { numGroups: 4, weight: Float32Array.from({ length: 16 }, (_, i) => 1 + i) }, 'fused-rows'],
    ['rmsNorm', { normalizedShape: [24] }, 'fused-rows'],
  ];
  for (const [op, options, variant] of cases) {
    const x = engine.tensor(data, shape);
    const variants = engine.explain(op as never, x, options).kernels.map((k) => k.variant);
    expect(variants, op).toContain(variant);
    device.pushErrorScope('validation');
    const got = await (engine as unknown as Record<string, (x: unknown, o: object) => { read(): Promise<Float32Array> }>)[op](x, options).read();
    expect(await device.popErrorScope(), op).toBeNull();
    const ref = await (cpu as unknown as Record<string, (x: unknown, o: object) => { read(): Promise<Float32Array> }>)[op](cpu.tensor(data, shape), options).read();
    expect(scaledError(got, ref), op).toBeLessThan(1e-5);
  }
  engine.dispose();
  // The engine did not make this device, so it must not have destroyed it.
  expect(() => device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }).destroy()).not.toThrow();
  device.destroy();
});
