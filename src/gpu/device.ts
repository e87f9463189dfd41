import { NormGpuError } from '../errors';

/** What `engine.adapterInfo` reports. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU-backed adapter (SwiftShader, WARP, llvmpipe...): planned with the serial kernels. */
  software: boolean;
}

export interface AcquiredDevice {
  device: GPUDevice;
  info: AdapterSummary;
  /** normgpu made the device, so it destroys it on `engine.dispose()`. */
  owned: boolean;
  /** Dawn's GPU object in Node: must stay strongly reachable while the device lives. */
  keepAlive?: unknown;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
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
 * Node has no `navigator.gpu`: load Dawn from the `webgpu` package. Where no Vulkan driver is
 * configured and Chromium's SwiftShader is installed, it is added as an extra driver
 * (VK_ADD_DRIVER_FILES), so a real GPU still wins when there is one.
 */
async function loadNodeGpu(): Promise<GPU | null> {
  const fs = await import(/* @vite-ignore */ 'node:fs');
  const env = process.env;
  if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && !env.VK_ADD_DRIVER_FILES && fs.existsSync(SWIFTSHADER_ICD)) {
    env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
  }
  const pkg = 'webgpu';
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    dawn = await import(/* @vite-ignore */ pkg);
  } catch {
    return null;
  }
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return dawn.create([]);
}

// One Dawn instance per process, made on first use and never dropped: a device outliving its
// instance crashes Dawn once V8 collects the instance (FACTS.md), and an engine's dispose()
// cannot know whether the device's last callbacks have run. `nodeGpu` reads it, so it stays
// reachable for the life of the module.
let dawnInstance: Promise<GPU | null> | undefined;

function nodeGpu(): Promise<GPU | null> {
  dawnInstance ??= loadNodeGpu();
  return dawnInstance;
}

/** Request an adapter and a device with the features and limits normgpu uses. */
export async function acquireDevice(powerPreference: GPUPowerPreference): Promise<AcquiredDevice> {
  let gpu: GPU | undefined = (globalThis as { navigator?: Navigator }).navigator?.gpu;
  let keepAlive: unknown;
  if (!gpu && isNode) {
    gpu = (await nodeGpu()) ?? undefined;
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
