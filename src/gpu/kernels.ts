/**
 * The WGSL stages and how each is linked and bound. A stage's module is its own file plus
 * the shared Welford library and, for workgroup-merging stages, one of the two merge
 * strategies (subgroup operations, or workgroup memory where the adapter lacks `subgroups`).
 */
import applyNorm from '../../shaders/apply_norm.wgsl?raw';
import finalizeStats from '../../shaders/finalize_stats.wgsl?raw';
import foldAffine from '../../shaders/fold_affine.wgsl?raw';
import mergeSubgroup from '../../shaders/merge_subgroup.wgsl?raw';
import mergeWorkgroup from '../../shaders/merge_workgroup.wgsl?raw';
import normalizeRows from '../../shaders/normalize_rows.wgsl?raw';
import normalizeSerial from '../../shaders/normalize_serial.wgsl?raw';
import reduceStats from '../../shaders/reduce_stats.wgsl?raw';
import reduceStatsColumns from '../../shaders/reduce_stats_columns.wgsl?raw';
import reduceStatsSerial from '../../shaders/reduce_stats_serial.wgsl?raw';
import welford from '../../shaders/welford.wgsl?raw';
import columnStats from '../../shaders/column_stats.wgsl?raw';
import mergeStats from '../../shaders/merge_stats.wgsl?raw';
import preprocessImage from '../../shaders/preprocess_image.wgsl?raw';
import scaleFeatures from '../../shaders/scale_features.wgsl?raw';

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

const reduceBindings: BindingKind[] = ['uniform', 'read', 'write'];

export const kernels = {
  reduceStats: (subgroups: boolean): KernelDef => ({
    name: subgroups ? 'reduce_stats+subgroup' : 'reduce_stats+workgroup',
    sources: [subgroups ? mergeSubgroup : mergeWorkgroup, welford, reduceStats],
    entryPoint: 'main',
    bindings: reduceBindings,
  }),
  reduceStatsColumns: {
    name: 'reduce_stats_columns', sources: [welford, reduceStatsColumns], entryPoint: 'main', bindings: reduceBindings,
  } as KernelDef,
  reduceStatsSerial: {
    name: 'reduce_stats_serial', sources: [welford, reduceStatsSerial], entryPoint: 'main', bindings: reduceBindings,
  } as KernelDef,
  finalizeStats: {
    name: 'finalize_stats', sources: [welford, finalizeStats], entryPoint: 'main',
    bindings: ['uniform', 'read', 'write', 'write', 'write'],
  } as KernelDef,
  /** Entry `main_spans` or `main_features`. */
  normalizeRows: (subgroups: boolean, entryPoint: string): KernelDef => ({
    name: subgroups ? 'normalize_rows+subgroup' : 'normalize_rows+workgroup',
    sources: [subgroups ? mergeSubgroup : mergeWorkgroup, welford, normalizeRows], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'write'],
  }),
  /** Entry `main` (scalar), `main_vec4_spans` or `main_vec4_features`. */
  normalizeSerial: (entryPoint: string): KernelDef => ({
    name: 'normalize_serial', sources: [welford, normalizeSerial], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'write', 'write', 'write'],
  }),
  foldAffine: {
    name: 'fold_affine', sources: [foldAffine], entryPoint: 'main',
    bindings: ['uniform', 'read', 'read', 'read', 'write'],
  } as KernelDef,
  /** Entry `main` (scalar, any row kind) or `main_vec4_planes|features|pixels`. */
  applyNorm: (entryPoint: string): KernelDef => ({
    name: 'apply_norm', sources: [applyNorm], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'write'],
  }),
  /** Image to tensor from packed bytes (`main_bytes`) or a texture array (`main_texture`). */
  preprocessImage: (texture: boolean): KernelDef => ({
    name: 'preprocess_image', sources: [preprocessImage], entryPoint: texture ? 'main_texture' : 'main_bytes',
    bindings: ['uniform', 'read', texture ? 'texture' : 'read', 'write'],
  }),
  /** Per-column chunk statistics of a [rows, width] matrix (dataset statistics, scalers). */
  columnStats: {
    name: 'column_stats', sources: [welford, columnStats], entryPoint: 'main',
    bindings: ['uniform', 'read', 'write', 'write'],
  } as KernelDef,
  /** Chan merge of column partials: `main_serial` or `main_tree`. */
  mergeStats: (tree: boolean): KernelDef => ({
    name: 'merge_stats', sources: [welford, mergeStats], entryPoint: tree ? 'main_tree' : 'main_serial',
    bindings: ['uniform', 'read', 'read', 'write', 'write'],
  }),
  /** Per-feature affine of the scalers' transform and inverse transform. */
  scaleFeatures: {
    name: 'scale_features', sources: [scaleFeatures], entryPoint: 'main',
    bindings: ['uniform', 'read', 'read', 'write'],
  } as KernelDef,
};
