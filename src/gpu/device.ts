import type { AdapterSummary } from '../backend';
import { NormGpuError } from '../errors';
import { prepareVulkanEnv } from './vulkan-env';

export type { AdapterSummary } from '../backend';

export interface AcquiredDevice {
  device: GPUDevice;
  info: AdapterSummary;
  /** normgpu made the device, so it destroys it on `engine.dispose()`. */
  owned: boolean;
  /** Dawn's GPU object in Node: must stay strongly reachable while the device lives. */
  keepAlive?: unknown;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export function summarize(info: GPUAdapterInfo | undefined, fallback = false): AdapterSummary {
  const s = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
  };
  const text = `${s.vendor} ${s.architecture} ${s.device} ${s.description}`.toLowerCase();
  const software = fallback || /swiftshader|llvmpipe|lavapipe|warp|software/.test(text);
  return { ...s, software };
}

/**
 * Node has no `navigator.gpu`: load Dawn from the optional peer package `webgpu`, after
 * preparing the Vulkan environment (vulkan-env.ts). Throws WEBGPU_UNAVAILABLE, naming the
 * package, when it is not installed or does not load.
 */
async function loadNodeGpu(): Promise<GPU> {
  prepareVulkanEnv();
  const pkg = 'webgpu'; // a computed name: bundlers of browser apps leave it alone
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    dawn = await import(/* @vite-ignore */ pkg);
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes(`'${pkg}'`);
    dawnProblem = missing
      ? 'Node has WebGPU only through the optional package `webgpu` (Dawn), which is not installed: npm install webgpu'
      : `the package \`webgpu\` (Dawn) did not load: ${e instanceof Error ? e.message : String(e)}`;
    throw new NormGpuError('WEBGPU_UNAVAILABLE', dawnProblem);
  }
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn.create([]);
}

/** Why Dawn could not be had in this process, once a load failed. */
let dawnProblem: string | undefined;
let cpuFallbackNoted = false;

/**
 * createEngine's `'auto'` runs on the CPU backend: in Node for want of `webgpu`, say so once per
 * process (console.warn), since one install fixes it. Other fallbacks stay silent.
 */
export function noteCpuFallback(): void {
  if (!dawnProblem || cpuFallbackNoted) return;
  cpuFallbackNoted = true;
  console.warn(`normgpu: using the CPU backend: ${dawnProblem}`);
}

// One Dawn instance per process, made on first use and never dropped: a device outliving its
// instance crashes Dawn once V8 collects the instance (FACTS.md), and an engine's dispose()
// cannot know whether the device's last callbacks have run. `nodeGpu` reads it, so it stays
// reachable for the life of the module.
let dawnInstance: Promise<GPU> | undefined;

function nodeGpu(): Promise<GPU> {
  dawnInstance ??= loadNodeGpu();
  return dawnInstance;
}

/** Request an adapter and a device with the features and limits normgpu uses. */
export async function acquireDevice(powerPreference: GPUPowerPreference): Promise<AcquiredDevice> {
  let gpu: GPU | undefined = (globalThis as { navigator?: Navigator }).navigator?.gpu;
  let keepAlive: unknown;
  if (!gpu && isNode) {
    gpu = await nodeGpu();
    keepAlive = gpu;
  }
  if (!gpu) throw new NormGpuError('WEBGPU_UNAVAILABLE', 'this environment has no WebGPU (navigator.gpu, or the `webgpu` package in Node)');
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new NormGpuError('WEBGPU_UNAVAILABLE', 'no WebGPU adapter is available');

  // Cast: some peers' older @webgpu/types lack 'subgroups' in GPUFeatureName.
  const wanted = ['subgroups', 'timestamp-query'] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    label: 'normgpu',
    requiredFeatures,
    // The defaults (128 MiB bindings, 256 MiB buffers) are far below what adapters offer.
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    },
  });
  const fallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? adapter.info?.isFallbackAdapter ?? false;
  return { device, info: summarize(adapter.info, fallback), owned: true, keepAlive };
}
