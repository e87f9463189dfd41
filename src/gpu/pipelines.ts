import { SHADER_STAGE_COMPUTE } from '../webgpu-flags';
import type { BindingKind, KernelDef } from '../stage-def';

type Overrides = Record<string, number | boolean>;

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

interface DeviceCache {
  modules: Map<string, GPUShaderModule>;
  pipelines: Map<string, CachedPipeline>;
  /** Async compiles in flight, so two preparations share one. */
  pending: Map<string, Promise<void>>;
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

function cacheOf(device: GPUDevice): DeviceCache {
  let cache = caches.get(device);
  if (!cache) {
    cache = { modules: new Map(), pipelines: new Map(), pending: new Map() };
    caches.set(device, cache);
  }
  return cache;
}

/**
 * The pipeline of `def` specialised by `overrides`, compiled synchronously on first use when
 * `preparePipeline` has not made it yet (a call before preparation still works, it just waits).
 */
export function getPipeline(device: GPUDevice, def: KernelDef, overrides: Overrides): CachedPipeline {
  const cache = cacheOf(device);
  const key = pipelineKey(def, overrides);
  const hit = cache.pipelines.get(key);
  if (hit) return hit;
  const { layout, descriptor } = describePipeline(device, cache, def, overrides, key);
  const entry = { pipeline: device.createComputePipeline(descriptor), layout };
  cache.pipelines.set(key, entry);
  return entry;
}

/** Compile the pipeline with createComputePipelineAsync (no main-thread stall) into the cache. */
export function preparePipeline(device: GPUDevice, def: KernelDef, overrides: Overrides): Promise<void> {
  const cache = cacheOf(device);
  const key = pipelineKey(def, overrides);
  if (cache.pipelines.has(key)) return Promise.resolve();
  let pending = cache.pending.get(key);
  if (!pending) {
    const { layout, descriptor } = describePipeline(device, cache, def, overrides, key);
    pending = device.createComputePipelineAsync(descriptor).then((pipeline) => {
      // A synchronous compile may have won the race; either pipeline is the same program.
      if (!cache.pipelines.has(key)) cache.pipelines.set(key, { pipeline, layout });
    }).finally(() => cache.pending.delete(key));
    cache.pending.set(key, pending);
  }
  return pending;
}

function describePipeline(device: GPUDevice, cache: DeviceCache, def: KernelDef, overrides: Overrides, key: string) {
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
  const descriptor: GPUComputePipelineDescriptor = {
    label: `normgpu:${key}`,
    layout: device.createPipelineLayout({ label: `normgpu:${def.name}:pipeline-layout`, bindGroupLayouts: [layout] }),
    // WebGPU passes every override as a double; booleans are 0 / 1.
    compute: { module, entryPoint: def.entryPoint, constants: Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, Number(v)])) },
  };
  return { layout, descriptor };
}

/** Number of pipelines cached for a device (tests check shapes never add any). */
export function cachedPipelineCount(device: GPUDevice): number {
  return caches.get(device)?.pipelines.size ?? 0;
}
