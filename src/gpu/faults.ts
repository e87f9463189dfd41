/**
 * GPU errors as typed results. WebGPU reports validation, out-of-memory and internal errors
 * asynchronously and, uncaptured, only to the console, while the affected buffers read as
 * zeros. Each call's GPU work therefore runs inside error scopes, and the error they catch
 * travels with the storages it wrote (Storage.fault) until a read surfaces it.
 */
import type { Storage } from '../backend';
import { NormGpuError } from '../errors';

const FILTERS: readonly GPUErrorFilter[] = ['internal', 'out-of-memory', 'validation'];

function typed(label: string, filter: GPUErrorFilter, error: GPUError): NormGpuError {
  const what = `${label}: ${error.message || filter}`;
  return filter === 'out-of-memory' ? new NormGpuError('OUT_OF_MEMORY', what) : new NormGpuError('GPU_ERROR', `${filter} error in ${what}`);
}

/**
 * Run `fn` (synchronous GPU calls only: error scopes capture what is issued while they are
 * open) inside one scope per error filter; `fault` settles to the first error caught, else null.
 */
export function guardScopes<T>(device: GPUDevice, label: string, fn: () => T): { value: T; fault: Promise<NormGpuError | null> } {
  for (const f of FILTERS) device.pushErrorScope(f);
  let fault!: Promise<NormGpuError | null>;
  let value: T;
  try {
    value = fn();
  } finally {
    // Popped in reverse order of pushing, also when `fn` throws; a lost device resolves them
    // to null (or rejects, in older implementations).
    fault = faultOf([...FILTERS].reverse().map((f) => device.popErrorScope().then(
      (e) => (e ? typed(label, f, e) : null),
      () => null,
    )));
  }
  return { value, fault };
}

/** The faults carried by GPU storages (CPU storages and absent operands carry none). */
export function storageFaults(storages: readonly (Storage | undefined)[]): Promise<NormGpuError | null>[] {
  const out: Promise<NormGpuError | null>[] = [];
  for (const s of storages) if (s?.kind === 'gpu' && s.fault) out.push(s.fault);
  return out;
}

/** The first non-null fault of `faults`, in order. */
export function faultOf(faults: readonly Promise<NormGpuError | null>[]): Promise<NormGpuError | null> {
  if (faults.length === 1) return faults[0];
  return Promise.all(faults).then((errors) => errors.find((e) => e !== null) ?? null);
}
