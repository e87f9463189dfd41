import type { Storage, TensorOwner } from '../backend';
import { check } from '../errors';
import type { Layout } from './options';
import { Tensor } from './tensor';

/** What the finalizer keeps of a tensor: never the tensor itself, or it could not be collected. */
interface Held {
  readonly owner: TensorOwner;
  readonly storage: Storage;
  readonly shape: readonly number[];
  readonly origin: string;
}

/**
 * The lifetimes of one engine's tensors. Every tensor of the engine is made here, so the
 * engine can count the live ones, dispose what a `tidy` scope made, and take back the memory
 * of tensors the garbage collector reclaims without `dispose()` (their storage returns to the
 * pool; the queue orders its reuse after the work already submitted).
 */
export class TensorTracker {
  readonly #warnLeaks: boolean;
  /** Open tidy scopes, innermost last: the tensors each made that are still alive. */
  readonly #scopes: Set<Tensor>[] = [];
  readonly #finalizer = new FinalizationRegistry<Held>((held) => this.#reclaim(held));
  #live = 0;
  #closed = false;

  constructor(warnLeaks: boolean) {
    this.#warnLeaks = warnLeaks;
  }

  /** Tensors made and neither disposed nor garbage-collected. */
  get liveTensors(): number {
    return this.#live;
  }

  /**
   * A tensor over `storage` of backend `owner` (an engine's backend changes after a device
   * loss); `origin` (the op or method that made it) names it in leak warnings.
   */
  create(owner: TensorOwner, storage: Storage, shape: readonly number[], layout: Layout, origin: string): Tensor {
    const tensor = new Tensor(owner, storage, shape, layout, this);
    this.#live++;
    this.#finalizer.register(tensor, { owner, storage, shape: tensor.shape, origin }, tensor);
    this.#scopes.at(-1)?.add(tensor);
    return tensor;
  }

  /** Called once by `Tensor.dispose()`, which then releases the storage itself. */
  disposed(tensor: Tensor): void {
    this.#finalizer.unregister(tensor);
    this.#live--;
    for (const scope of this.#scopes) scope.delete(tensor);
  }

  /**
   * Run `fn` synchronously and dispose every tensor made during it except those it returns (see
   * `Engine.tidy`). Kept tensors join the enclosing scope, as if made there.
   */
  tidy<T>(fn: () => T): T {
    check(typeof fn === 'function', 'INVALID_ARGUMENT', 'tidy takes a function');
    check(fn.constructor.name !== 'AsyncFunction', 'INVALID_ARGUMENT', ASYNC_TIDY);
    const scope = new Set<Tensor>();
    this.#scopes.push(scope);
    let kept = new Set<Tensor>();
    try {
      const result = fn();
      check(typeof (result as { then?: unknown } | null)?.then !== 'function', 'INVALID_ARGUMENT', ASYNC_TIDY);
      kept = tensorsIn(result);
      return result;
    } finally {
      this.#scopes.pop();
      for (const t of scope) if (!kept.has(t)) t.dispose();
      const parent = this.#scopes.at(-1);
      if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
    }
  }

  /** Take `tensor` out of every open tidy scope: it outlives them (see `Engine.keep`). */
  keep(tensor: Tensor): void {
    for (const scope of this.#scopes) scope.delete(tensor);
  }

  /** The engine was disposed: its memory went with it, so later collections are no leaks. */
  close(): void {
    this.#closed = true;
  }

  #reclaim({ owner, storage, shape, origin }: Held): void {
    this.#live--;
    owner.releaseStorage(storage);
    // A wrapped buffer stays its owner's: nothing leaked.
    if (!this.#warnLeaks || this.#closed || (storage.kind === 'gpu' && !storage.owned)) return;
    console.warn(
      `normgpu: a tensor [${shape}] made by ${origin} was garbage-collected without dispose(); ` +
        'call dispose() or make it inside engine.tidy() to free its memory promptly',
    );
  }
}

const ASYNC_TIDY = 'tidy takes a synchronous function (tensors made after an await could not be told apart from other code\'s)';

/** The tensors `tidy` keeps: the result itself, or the top-level values of an array or object. */
function tensorsIn(result: unknown): Set<Tensor> {
  if (result instanceof Tensor) return new Set([result]);
  if (typeof result !== 'object' || result === null) return new Set();
  return new Set(Object.values(result).filter((v): v is Tensor => v instanceof Tensor));
}
