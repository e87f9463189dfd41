import { SHADER_STAGE_COMPUTE } from './flags';
import type { BindingKind, KernelDef } from './kernels';

type Overrides = Record<string, number | boolean>;

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

interface DeviceCache {
  modules: Map<string, GPUShaderModule>;
  pipelines: Map<string, CachedPipeline>;
}

// Per device, so pipelines die with their device; keyed by stage, entry point and override
// constants only: shapes travel in uniforms and never make a new pipeline.
const caches = new WeakMap<GPUDevice, DeviceCache>();

const bufferType: Record<Exclude<BindingKind, 'texture'>, GPUBufferBindingType> = {
  uniform: 'uniform', read: 'read-only-storage', write: 'storage',
};

export function pipelineKey(def: KernelDef, overrides: Overrides): string {
  const consts = Object.keys(overrides).sort().map((k) => `${k}=${overrides[k]}`).join(',');
  return `${def.name}:${def.entryPoint}:${consts}`;
}

export function getPipeline(device: GPUDevice, def: KernelDef, overrides: Overrides): CachedPipeline {
  let cache = caches.get(device);
  if (!cache) {
    cache = { modules: new Map(), pipelines: new Map() };
    caches.set(device, cache);
  }
  const key = pipelineKey(def, overrides);
  const hit = cache.pipelines.get(key);
  if (hit) return hit;

  let module = cache.modules.get(def.name);
  if (!module) {
    module = device.createShaderModule({ label: `normgpu:${def.name}`, code: def.sources.join('\n') });
    cache.modules.set(def.name, module);
  }
  const layout = device.createBindGroupLayout({
    label: `normgpu:${def.name}:layout`,
    entries: def.bindings.map((kind, binding): GPUBindGroupLayoutEntry => (kind === 'texture'
      // unfilterable-float accepts every float format, 8-bit unorm to rgba32float.
      ? { binding, visibility: SHADER_STAGE_COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d-array' } }
      : { binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: bufferType[kind] } })),
  });
  const pipeline = device.createComputePipeline({
    label: `normgpu:${key}`,
    layout: device.createPipelineLayout({ label: `normgpu:${def.name}:pipeline-layout`, bindGroupLayouts: [layout] }),
    // WebGPU passes every override as a double; booleans are 0 / 1.
    compute: { module, entryPoint: def.entryPoint, constants: Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, Number(v)])) },
  });
  const entry = { pipeline, layout };
  cache.pipelines.set(key, entry);
  return entry;
}

/** Number of pipelines cached for a device (tests check shapes never add any). */
export function cachedPipelineCount(device: GPUDevice): number {
  return caches.get(device)?.pipelines.size ?? 0;
}
