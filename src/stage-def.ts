/**
 * How a WGSL stage is declared to the WebGPU backend: its linked sources, entry point and
 * bindings. The core stages are listed in src/gpu/kernels.ts; the stages of ops outside the
 * engine's methods (preprocess, the column statistics and scalers) are declared by their plans
 * and handed to the backend with each call, so an app bundles their WGSL only if it imports
 * those ops.
 */

/**
 * How a binding is declared in the shader: uniform, read-only storage, read-write storage, or
 * `texture`: a `texture_2d_array<f32>` read with textureLoad (bound as a GPUTextureView).
 */
export type BindingKind = 'uniform' | 'read' | 'write' | 'texture';

export interface KernelDef {
  /** Stage name, as its .wgsl file and its CPU twin are named. */
  readonly name: string;
  /** WGSL sources linked in this order (an `enable` directive must come first). */
  readonly sources: readonly string[];
  readonly entryPoint: string;
  readonly bindings: readonly BindingKind[];
}
