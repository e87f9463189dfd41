/**
 * `x * scale + add`, elementwise, on the engine's device (the axpby stage), into a new tensor
 * or in place: what gradient accumulation, SGD steps and InstanceNorm's running-statistics
 * blend need. Every
 * check runs before any work; nothing is uploaded from the host but the stage's uniform.
 */
import { sameMemory } from '../../backend';
import { check } from '../../errors';
import type { Engine } from '../engine';
import { checkTensor, type Tensor } from '../tensor';

/** x (and add) checked: live float32 tensors of the engine with the same element count. */
function operands(engine: Engine, x: unknown, add: unknown, names: [string, string]): [Tensor, Tensor | null] {
  const backend = engine.internalBackend;
  const a = checkTensor(backend, x, names[0]);
  const b = add === null ? null : checkTensor(backend, add, names[1]);
  for (const [t, name] of [[a, names[0]], [b, names[1]]] as const) {
    check(!t || t.dtype === 'float32', 'INVALID_DTYPE', `${name} must be a float32 tensor, got ${t?.dtype}`);
  }
  check(!b || b.size === a.size, 'PARAM_LENGTH_MISMATCH', `${names[1]} has ${b?.size} elements, expected ${a.size}`);
  return [a, b];
}

/**
 * A new tensor of `shape` (default x's; x.size elements) holding x * scale + add (`add` null:
 * x * scale; scale 1 then copies x bit for bit). Inputs keep their owners; the result is the caller's.
 */
export function scaleAdd(engine: Engine, x: Tensor, scale: number, add: Tensor | null, shape: readonly number[] = x.shape): Tensor {
  const [a, b] = operands(engine, x, add, ['x', 'add']);
  const y = engine.internalBackend.axpby(a.storage, scale, b?.storage ?? null, 1, a.size);
  return engine.internalTensor(y, shape, 'channels-first', 'scaleAdd');
}

/**
 * target = target * targetScale + x * scale (defaults 1), in target's own memory (no
 * allocation): target stays the same tensor. `x` must not share target's memory (INVALID_ARGUMENT).
 */
export function addInto(engine: Engine, target: Tensor, x: Tensor, scale = 1, targetScale = 1): void {
  const [a, b] = operands(engine, x, target, ['x', 'target']);
  check(!sameMemory(a.storage, b!.storage), 'INVALID_ARGUMENT', 'addInto: x shares the memory of the target it is added into');
  b!.rewritten(engine.internalBackend.axpby(a.storage, scale, b!.storage, targetScale, a.size, { inPlace: true }));
}
