/**
 * Cases of the model manifest (`test/golden-model/manifest.json`, PyTorch float64 references),
 * told apart from the other manifests by their `kind`:
 * - `half`: float16 input (and residual: `.f16` files), float32 parameters; the reference is
 *   the float64 result of the half inputs, unrounded. Run in float16 end to end (the output is
 *   float16 too).
 * - `fused`: `params.residual` (normalize input + residual, the `sum` compared too) and
 *   `params.activation` after the affine. Either kind takes either params, and its dtype.
 * - `module`: nn.BatchNorm2d sequences, run by module-cases.ts on the BatchNorm2d module.
 * Tolerances are the manifest's: half 9.8e-4 (one half ulp at |e| ~ 1), fused 1e-5 (1e-4 for
 * offset inputs), module 1e-5. Results have the same JSON shape as every other case.
 */
import type { Activation, Engine, Tensor } from '../index';
import { runModuleCase } from './module-cases';
import { runOp, type Comparison, type GoldenCase } from './runner';

/** How runner.ts runs one model case. */
export interface ModelCase {
  tolerance: number;
  /** Why the case is not run (pass: null), if it is not. */
  unsupported?: string;
  run?: (
    engine: Engine, c: GoldenCase, load: (key: string) => Promise<Float32Array>, track: <T extends Tensor>(t: T) => T,
  ) => Promise<Comparison[]>;
}

const ACTIVATIONS: readonly string[] = ['relu', 'silu', 'gelu', 'gelu_tanh'];

/** The model case `c` is, or null for cases of the other manifests (no `kind`). */
export function modelCase(c: GoldenCase): ModelCase | null {
  const kind = c.kind;
  if (kind === undefined) return null;
  if (kind === 'module') return { tolerance: 1e-5, run: runModuleCase };
  if (kind === 'half') return { tolerance: 9.8e-4, run: runNorm };
  if (kind === 'fused') return { tolerance: c.dist === 'offset' ? 1e-4 : 1e-5, run: runNorm };
  return { tolerance: 1e-5, unsupported: `unknown case kind ${JSON.stringify(kind)}` };
}

/** A half or fused case: its dtype (`dtype` float16, or a `.f16` input) and epilogue params, for either kind. */
function runNorm(
  engine: Engine, c: GoldenCase, load: (key: string) => Promise<Float32Array>, track: <T extends Tensor>(t: T) => T,
): Promise<Comparison[]> {
  const p = c.params;
  const dtype = c.dtype === 'float16' || (typeof c.input === 'string' && c.input.endsWith('.f16')) ? 'float16' : 'float32';
  const activation = p.activation;
  if (activation !== undefined && (typeof activation !== 'string' || !ACTIVATIONS.includes(activation))) {
    throw new Error(`params.activation ${JSON.stringify(activation)} is not one of ${ACTIVATIONS.join(', ')}`);
  }
  return runOp(engine, c, load, track, {
    dtype,
    epilogue: async (layout) => ({
      ...(activation ? { activation: activation as Activation } : {}),
      ...(p.residual === true
        ? { residual: track(engine.tensor(await load('residual'), c.shape, { layout, dtype })), returnSum: typeof c.sum === 'string' }
        : {}),
    }),
  });
}
