/**
 * Argument checks of the public entry points that need the engine or the device (the generic
 * ones live with the specs, in `plan/checks.ts`, and are re-exported here).
 */
import type { Backend } from '../backend';
import { check } from '../errors';
import { checkOneOf, checkOptions, describe } from '../plan/checks';
import { Engine } from './engine';
import type { EngineOptions } from './options';

export { checkBoolean, checkFloatData, checkNumber, checkOneOf, checkOptions, describe, toFloat32 } from '../plan/checks';

/** An engine made by `createEngine` (INVALID_ARGUMENT otherwise). */
export function checkEngine(engine: unknown, name = 'engine'): Engine {
  check(engine instanceof Engine, 'INVALID_ARGUMENT', `${name} must be an Engine from createEngine, got ${describe(engine)}`);
  return engine;
}

/**
 * A GPUBuffer (checked by shape, so buffers of another realm pass) that is unmapped: a mapped
 * or map-pending buffer cannot be used by GPU work, which would read zeros or fail later.
 */
export function checkGpuBuffer(buffer: unknown, name: string): GPUBuffer {
  const b = buffer as Partial<GPUBuffer> | null;
  check(
    b !== null && typeof b === 'object' && typeof b.size === 'number' && typeof b.usage === 'number'
      && typeof b.mapState === 'string' && typeof b.mapAsync === 'function',
    'INVALID_ARGUMENT', `${name} must be a GPUBuffer, got ${describe(buffer)}`,
  );
  check(b.mapState === 'unmapped', 'BUFFER_MAPPED', `${name} is ${b.mapState}: unmap it before wrapping it`);
  return b as GPUBuffer;
}

/** True when `bytes` of tensor data fit one buffer binding of `backend`. */
export function fitsBinding(backend: Backend, bytes: number): boolean {
  return bytes <= backend.maxBindingBytes;
}

/** TENSOR_TOO_LARGE unless `bytes` of `what` fit one buffer binding of `backend`. */
export function checkFitsBinding(backend: Backend, bytes: number, what: string): void {
  check(
    fitsBinding(backend, bytes), 'TENSOR_TOO_LARGE',
    `${what} needs ${bytes} bytes, over the ${backend.maxBindingBytes}-byte limit of one buffer binding on this device`,
  );
}

/** The most rows of `rowBytes` each that fit one buffer binding (0 when not even one does). */
export function rowsPerBinding(backend: Backend, rowBytes: number): number {
  return Math.floor(backend.maxBindingBytes / rowBytes);
}

/**
 * `createEngine` options beyond the ones it checks itself: an object, a known powerPreference,
 * and a device that is a GPUDevice (checked by shape, as buffers are).
 */
export function checkEngineOptions(options: unknown): void {
  const o = checkOptions(options as EngineOptions | undefined, 'createEngine options');
  checkOneOf(o.powerPreference, 'powerPreference', ['high-performance', 'low-power'], 'high-performance');
  if (o.device === undefined) return;
  const d = o.device as Partial<GPUDevice> | null;
  check(
    d !== null && typeof d === 'object' && typeof d.createBuffer === 'function' && typeof d.queue === 'object' && typeof d.limits === 'object',
    'INVALID_ARGUMENT', `device must be a GPUDevice, got ${describe(o.device)}`,
  );
}
