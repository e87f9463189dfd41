/**
 * Argument checks shared by the specs and the public entry points. Each throws a NormGpuError
 * that names the argument and says what it got, so a caller's mistake surfaces at the call,
 * before any GPU work, instead of as NaN data, zeros or a raw TypeError later.
 */
import { check, NormGpuError, type ErrorCode } from '../errors';
import type { FloatData } from './options';

/** A short description of a value for error messages: `null`, `the string "abc"`, `an Int32Array of 3`... */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  switch (typeof v) {
    case 'string': return `the string ${JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…` : v)}`;
    case 'number': return String(v);
    case 'boolean': return `the boolean ${v}`;
    case 'bigint': return `the bigint ${v}n`;
    case 'function': return 'a function';
    case 'symbol': return 'a symbol';
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${(v as unknown as ArrayLike<unknown>).length ?? v.byteLength}`;
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** An options argument: undefined means defaults (`{}`); anything but a plain object throws INVALID_ARGUMENT. */
export function checkOptions<T extends object>(options: T | null | undefined, name: string): T {
  if (options === undefined) return {} as T;
  check(
    options !== null && typeof options === 'object' && !Array.isArray(options) && !ArrayBuffer.isView(options),
    'INVALID_ARGUMENT', `${name} must be an object, got ${describe(options)}`,
  );
  return options;
}

/**
 * Float data: a Float32Array, a Float64Array (converted to float32) or an array of numbers.
 * NaN and infinities are data like any other (PyTorch semantics). Anything that is not an
 * array throws INVALID_ARGUMENT; another typed array, or an array holding a non-number,
 * INVALID_DATA (JS would turn `'1.5'` into 1.5 and `'a'` into NaN without a word).
 */
export function checkFloatData(data: unknown, name: string): FloatData {
  if (data instanceof Float32Array || data instanceof Float64Array) return data;
  if (ArrayBuffer.isView(data)) {
    throw new NormGpuError('INVALID_DATA', `${name} must be a Float32Array, Float64Array or number[], got ${describe(data)}`);
  }
  check(Array.isArray(data), 'INVALID_ARGUMENT', `${name} must be a Float32Array, Float64Array or number[], got ${describe(data)}`);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number') throw new NormGpuError('INVALID_DATA', `${name}[${i}] is ${describe(v)}, not a number`);
  }
  return data as readonly number[];
}

/** Checked float data as a Float32Array (the argument itself when it is one). */
export function toFloat32(data: FloatData): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

/**
 * A finite number, optionally an integer and within [min, max]; `code` is the error's
 * (INVALID_ARGUMENT unless the option has its own, as eps and momentum do).
 */
export function checkNumber(
  v: unknown, name: string,
  { min = -Infinity, max = Infinity, integer = false, code = 'INVALID_ARGUMENT' }: { min?: number; max?: number; integer?: boolean; code?: ErrorCode } = {},
): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (!integer || Number.isInteger(v)) && v >= min && v <= max;
  if (!ok) {
    const range = min > -Infinity && max < Infinity ? ` in [${min}, ${max}]` : min > -Infinity ? ` >= ${min}` : max < Infinity ? ` <= ${max}` : '';
    throw new NormGpuError(code, `${name} must be a finite ${integer ? 'integer' : 'number'}${range}, got ${describe(v)}`);
  }
  return v as number;
}

/** An optional boolean option: its value, or `fallback` when undefined. */
export function checkBoolean(v: unknown, name: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  check(typeof v === 'boolean', 'INVALID_ARGUMENT', `${name} must be true or false, got ${describe(v)}`);
  return v;
}

/** An optional option among `values`: its value, or `fallback` when undefined. */
export function checkOneOf<T extends string>(v: unknown, name: string, values: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  check(values.includes(v as T), 'INVALID_ARGUMENT', `${name} must be ${values.map((s) => `'${s}'`).join(', ')}, got ${describe(v)}`);
  return v as T;
}
