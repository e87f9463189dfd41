/**
 * The base of the stateful normalization modules (`torch.nn` style): named parameters with
 * accumulated gradients, named buffers (running statistics), train/eval mode, and state dicts
 * keyed as PyTorch names them, so weights exported from PyTorch load directly.
 */
import { check, NormGpuError } from '../../errors';
import { describe } from '../../plan/checks';
import type { SavedStats } from '../../plan/grad';
import type { Engine } from '../engine';
import { checkTensor, type Tensor } from '../tensor';
import { checkEngine } from '../validate';
import { addInto, scaleAdd } from './scale-add';

/**
 * A learnable tensor of a module. `data` holds the values; `grad` the gradient accumulated by
 * `backward()` calls since the last `zeroGrad()` (null until then, as PyTorch's `.grad`).
 * An optimizer step (see `SGD`) updates `data` in place; `loadStateDict` replaces it.
 */
export class Parameter {
  /** The engine holding `data` and `grad`. */
  readonly engine: Engine;
  data: Tensor;
  grad: Tensor | null = null;
  /** Whether `backward()` computes and accumulates this parameter's gradient. Default: true. */
  requiresGrad = true;
  /** The `grad` tensor `accumulate` made, which it may rewrite in place. */
  #ownGrad: Tensor | null = null;

  /** @internal Made by a module. */
  constructor(engine: Engine, data: Tensor) {
    this.engine = engine;
    this.data = data;
  }

  /**
   * @internal Add `delta` (a fresh tensor of data.size elements, taken over) into `grad`: in
   * place when `grad` is the tensor this method made (a tensor assigned from outside may be
   * shared or wrapped, so it is replaced by a new one and disposed, as before).
   */
  accumulate(delta: Tensor): void {
    // Kept: a backward run inside `engine.tidy` must not take the gradient with it.
    if (this.grad === null && sameShape(delta.shape, this.data.shape)) {
      this.grad = this.#ownGrad = this.engine.keep(delta);
      return;
    }
    if (this.grad !== null && this.grad === this.#ownGrad) addInto(this.engine, this.grad, delta);
    else {
      const sum = scaleAdd(this.engine, delta, 1, this.grad, this.data.shape);
      this.grad?.dispose();
      this.grad = this.#ownGrad = this.engine.keep(sum);
    }
    delta.dispose();
  }

  /** Free `data` and `grad`. */
  dispose(): void {
    this.data.dispose();
    this.grad?.dispose();
    this.grad = null;
  }
}

/**
 * A state dict as `stateDict()` returns it: `weight`, `bias`, `running_mean`, `running_var`
 * as Float32Arrays (flat, C order) and `num_batches_tracked` as a number, where the module has them.
 */
export type StateDict = Record<string, Float32Array | number>;

/**
 * What `loadStateDict` takes: per key a Float32Array, Float64Array or (possibly nested, as
 * PyTorch's `tensor.tolist()` gives) number array; `num_batches_tracked` a number or bigint.
 */
export type StateDictInput = Record<string, unknown>;

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /**
   * Missing and unexpected keys throw STATE_DICT_MISMATCH (default: true, as PyTorch). With
   * false they are skipped; entries of a wrong length throw either way.
   */
  strict?: boolean;
}

/** What the last forward left for backward: its input, the op and options to differentiate, saved statistics. */
export interface ForwardRecord {
  x: Tensor;
  op: 'batchNorm' | 'layerNorm' | 'rmsNorm' | 'instanceNorm' | 'groupNorm';
  options: Record<string, unknown>;
  saved?: SavedStats<Tensor>;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Base class of the normalization modules. Parameters and buffers are tensors on `engine`;
 * `forward(x)` returns a new tensor and remembers what `backward(dy)` needs (the input tensor
 * itself, which must stay alive until then, and the per-group statistics); `backward` returns
 * the gradient w.r.t. the input and accumulates the parameters' gradients into `.grad`.
 * Modules start in training mode, as in PyTorch. `dispose()` frees every tensor the module holds.
 */
export abstract class Module {
  readonly engine: Engine;
  /** Training mode (default true): see `train()` / `eval()`. */
  training = true;
  readonly #parameters = new Map<string, Parameter>();
  readonly #buffers = new Map<string, Tensor>();
  #record: ForwardRecord | null = null;

  constructor(engine: Engine) {
    this.engine = checkEngine(engine);
  }

  /** Normalize `x`, remembering what `backward` needs. */
  abstract forward(x: Tensor): Tensor;

  /**
   * Gradient w.r.t. the input of the last `forward`, given the gradient `dy` of its output
   * (same shape and layout); the parameters' gradients are added into their `.grad`. NO_FORWARD
   * without a forward since construction or the last `loadStateDict`.
   */
  backward(dy: Tensor): Tensor {
    const r = this.#record;
    check(r, 'NO_FORWARD', `${this.constructor.name}.backward needs a forward first`);
    const { weight, bias } = this;
    const outputMask = { input: true, weight: weight?.requiresGrad ?? false, bias: bias?.requiresGrad ?? false };
    const { dx, dweight, dbias } = this.engine.normBackward(r.op, dy, r.x, { ...r.options, saved: r.saved, outputMask });
    if (dweight) weight!.accumulate(dweight);
    if (dbias) bias!.accumulate(dbias);
    return dx!;
  }

  /** The per-channel (or per-element) scale, or null without an affine. */
  get weight(): Parameter | null {
    return this.#parameters.get('weight') ?? null;
  }

  /** The shift, or null without one. */
  get bias(): Parameter | null {
    return this.#parameters.get('bias') ?? null;
  }

  /** Set training mode (`train(false)` is `eval()`); returns the module. */
  train(mode = true): this {
    check(typeof mode === 'boolean', 'INVALID_ARGUMENT', `train(mode) takes a boolean, got ${describe(mode)}`);
    this.training = mode;
    return this;
  }

  /** Evaluation mode; returns the module. */
  eval(): this {
    return this.train(false);
  }

  /** The learnable parameters by PyTorch name (`weight`, `bias`), in registration order. */
  namedParameters(): [string, Parameter][] {
    return [...this.#parameters];
  }

  /** The learnable parameters, for an optimizer. */
  parameters(): Parameter[] {
    return [...this.#parameters.values()];
  }

  /** Drop the accumulated gradients (PyTorch's `zero_grad()`, which sets them to None). */
  zeroGrad(): void {
    for (const p of this.#parameters.values()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The state, keyed as PyTorch's `state_dict()`: parameters, then buffers, then counters. */
  async stateDict(): Promise<StateDict> {
    const out: StateDict = {};
    for (const [k, p] of this.#parameters) out[k] = await p.data.read();
    for (const [k, b] of this.#buffers) out[k] = await b.read();
    for (const [k, v] of Object.entries(this.counters())) out[k] = v;
    return out;
  }

  /**
   * Load a state dict (see StateDictInput), e.g. PyTorch's `{k: v.tolist() for k, v in
   * m.state_dict().items()}`. Every entry is checked before anything changes: keys
   * (STATE_DICT_MISMATCH, see `strict`), element counts and nested shapes (PARAM_LENGTH_MISMATCH),
   * values (INVALID_DATA). Loaded parameters and buffers are new tensors; the loaded parameters'
   * gradients and the record of the last forward are dropped.
   */
  loadStateDict(dict: StateDictInput, options: LoadStateDictOptions = {}): void {
    check(dict !== null && typeof dict === 'object' && !Array.isArray(dict) && !ArrayBuffer.isView(dict),
      'STATE_DICT_MISMATCH', `a state dict must be an object of arrays, got ${describe(dict)}`);
    check(options !== null && typeof options === 'object', 'INVALID_ARGUMENT', `loadStateDict options must be an object, got ${describe(options)}`);
    const strict = options.strict ?? true;
    check(typeof strict === 'boolean', 'INVALID_ARGUMENT', `strict must be true or false, got ${describe(strict)}`);
    const tensors = new Map<string, Tensor>([...[...this.#parameters].map(([k, p]) => [k, p.data] as const), ...this.#buffers]);
    const counters = this.counters();
    const expected = [...tensors.keys(), ...Object.keys(counters)];
    if (strict) {
      const missing = expected.filter((k) => !(k in dict));
      const unexpected = Object.keys(dict).filter((k) => !expected.includes(k));
      check(missing.length === 0 && unexpected.length === 0, 'STATE_DICT_MISMATCH',
        `${this.constructor.name} state dict: ${[missing.length ? `missing keys ${missing.join(', ')}` : '', unexpected.length ? `unexpected keys ${unexpected.join(', ')}` : ''].filter(Boolean).join('; ')}`);
    }
    const values = new Map<string, Float32Array>();
    for (const [k, t] of tensors) if (k in dict) values.set(k, flatten(dict[k], t.shape, k));
    const counts = new Map<string, number>();
    for (const k of Object.keys(counters)) if (k in dict) counts.set(k, counter(dict[k], k));

    this.#forget();
    for (const [k, v] of values) {
      const fresh = this.engine.tensor(v, tensors.get(k)!.shape);
      const p = this.#parameters.get(k);
      if (p) {
        p.dispose();
        p.data = fresh;
      } else {
        this.#buffers.get(k)!.dispose();
        this.#buffers.set(k, fresh);
      }
    }
    for (const [k, v] of counts) this.setCounter(k, v);
  }

  /** Free every tensor of the module. */
  dispose(): void {
    for (const p of this.#parameters.values()) p.dispose();
    for (const b of this.#buffers.values()) b.dispose();
    this.#forget();
  }

  /** `dispose()`, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * `x` checked to be a live tensor of this module's engine, of one of `ranks` (INVALID_SHAPE)
   * and, unless `channels` is null, of that many channels in its layout (CHANNEL_MISMATCH).
   */
  protected input(x: unknown, ranks: readonly number[] | null = null, channels: number | null = null): Tensor {
    const t = checkTensor(this.engine.internalBackend, x, 'input');
    const name = this.constructor.name;
    check(!ranks || ranks.includes(t.shape.length), 'INVALID_SHAPE',
      `${name} expects a ${ranks?.map((r) => `${r}-D`).join(' or ')} input, got [${t.shape}]`);
    check(channels === null || t.shape.length >= 2, 'INVALID_SHAPE', `${name} expects an input with a channel dim, got [${t.shape}]`);
    const c = t.layout === 'channels-last' ? t.shape[t.shape.length - 1] : t.shape[1];
    check(channels === null || c === channels, 'CHANNEL_MISMATCH', `${name}(${channels}) got an input of ${c} channels ([${t.shape}], ${t.layout})`);
    return t;
  }

  /** A parameter of `shape` holding `value` everywhere, registered under `name`. */
  protected addParameter(name: string, shape: readonly number[], value: number): Parameter {
    const p = new Parameter(this.engine, this.#filled(shape, value));
    this.#parameters.set(name, p);
    return p;
  }

  /** A buffer of `shape` holding `value` everywhere, registered under `name`. */
  protected addBuffer(name: string, shape: readonly number[], value: number): void {
    this.#buffers.set(name, this.#filled(shape, value));
  }

  /** The current tensor of a buffer (undefined when the module has none of that name). */
  protected buffer(name: string): Tensor | undefined {
    return this.#buffers.get(name);
  }

  /** Scalar state entries (`num_batches_tracked`), by state-dict key. */
  protected counters(): Record<string, number> {
    return {};
  }

  /** Load a scalar state entry named by `counters()`. */
  protected setCounter(name: string, _value: number): void {
    throw new NormGpuError('STATE_DICT_MISMATCH', `${this.constructor.name} has no counter ${name}`);
  }

  /** Remember what the next `backward` differentiates (replacing the previous record). */
  protected remember(record: ForwardRecord): void {
    this.#forget();
    this.#record = record;
  }

  /** Drop the record of the last forward, freeing its saved statistics. */
  #forget(): void {
    const s = this.#record?.saved;
    s?.mean?.dispose();
    s?.rstd.dispose();
    this.#record = null;
  }

  #filled(shape: readonly number[], value: number): Tensor {
    return this.engine.tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape);
  }
}

/**
 * A state-dict entry as float32 data of `shape`: a typed float array or a flat array of its
 * element count, or a nested array of exactly that shape.
 */
function flatten(v: unknown, shape: readonly number[], key: string): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  if (v instanceof Float32Array || v instanceof Float64Array) {
    check(v.length === size, 'PARAM_LENGTH_MISMATCH', `state dict ${key} has ${v.length} values, expected ${size} ([${shape}])`);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }
  check(Array.isArray(v), ArrayBuffer.isView(v) ? 'INVALID_DATA' : 'STATE_DICT_MISMATCH',
    `state dict ${key} must be a Float32Array, Float64Array or number array, got ${describe(v)}`);
  const out: number[] = [];
  // A flat array of the element count, or nested lists of the exact shape.
  const walk = (a: unknown, depth: number, path: string): void => {
    if (Array.isArray(a)) {
      const nested = a.some((e) => Array.isArray(e));
      if (nested || depth > 0) {
        check(depth < shape.length && a.length === shape[depth], 'PARAM_LENGTH_MISMATCH',
          `state dict ${key}${path} has ${a.length} entries where shape [${shape}] has ${shape[depth] ?? 'none'}`);
      }
      a.forEach((e, i) => walk(e, depth + 1, `${path}[${i}]`));
      return;
    }
    if (typeof a !== 'number') throw new NormGpuError('INVALID_DATA', `state dict ${key}${path} is ${describe(a)}, not a number`);
    out.push(a);
  };
  walk(v, 0, '');
  check(out.length === size, 'PARAM_LENGTH_MISMATCH', `state dict ${key} has ${out.length} values, expected ${size} ([${shape}])`);
  return Float32Array.from(out);
}

/** A counter entry: a non-negative integer (a number, a bigint, or a one-element array of one). */
function counter(v: unknown, key: string): number {
  const n = typeof v === 'bigint' ? Number(v) : Array.isArray(v) && v.length === 1 ? v[0] : v;
  check(typeof n === 'number' && Number.isSafeInteger(n) && n >= 0, 'STATE_DICT_MISMATCH',
    `state dict ${key} must be a non-negative integer, got ${describe(v)}`);
  return n;
}
