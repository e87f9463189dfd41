/**
 * The core WGSL stages (the engine's ops) and how each is linked and bound. A stage's module
 * is its own file plus the shared Welford library and, for workgroup-merging stages, one of the
 * two merge strategies (subgroup operations, or workgroup memory where the adapter lacks
 * `subgroups`). The stages of preprocess and the column statistics come with their calls
 * (src/stage-def.ts).
 */
import addResidual from '../../shaders/add_residual.wgsl?raw';
import applyNorm from '../../shaders/apply_norm.wgsl?raw';
import epilogue from '../../shaders/epilogue.wgsl?raw';
import finalizeStats from '../../shaders/finalize_stats.wgsl?raw';
import foldAffine from '../../shaders/fold_affine.wgsl?raw';
import mergeSubgroup from '../../shaders/merge_subgroup.wgsl?raw';
import mergeWorkgroup from '../../shaders/merge_workgroup.wgsl?raw';
import normalizeRows from '../../shaders/normalize_rows.wgsl?raw';
import normalizeSerial from '../../shaders/normalize_serial.wgsl?raw';
import reduceStats from '../../shaders/reduce_stats.wgsl?raw';
import reduceStatsColumns from '../../shaders/reduce_stats_columns.wgsl?raw';
import reduceStatsSerial from '../../shaders/reduce_stats_serial.wgsl?raw';
import quadStats from '../../shaders/quad_stats.wgsl?raw';
import rescueChunk from '../../shaders/rescue_chunk.wgsl?raw';
import welford from '../../shaders/welford.wgsl?raw';
import savedStats from '../../shaders/saved_stats.wgsl?raw';
import reduceGrad from '../../shaders/reduce_grad.wgsl?raw';
import mergeGrad from '../../shaders/merge_grad.wgsl?raw';
import applyGrad from '../../shaders/apply_grad.wgsl?raw';
import gradCommon from '../../shaders/grad_common.wgsl?raw';
import gradSerial from '../../shaders/grad_serial.wgsl?raw';
import axpby from '../../shaders/axpby.wgsl?raw';
import type { ColumnsPass, GradSerialEntry, RowsPass } from '../plan/grad';
import type { BindingKind, KernelDef } from '../stage-def';


/** Stage 1: uniform, x, partials and (serial and columns variants) their ranges. */
const reduceBindings: BindingKind[] = ['uniform', 'read', 'write'];
const reduceRangeBindings: BindingKind[] = [...reduceBindings, 'write'];

export const kernels = {
  reduceStats: (subgroups: boolean): KernelDef => ({
    name: subgroups ? 'reduce_stats+subgroup' : 'reduce_stats+workgroup',
    sources: [subgroups ? mergeSubgroup : mergeWorkgroup, welford, epilogue, rescueChunk, reduceStats],
    entryPoint: 'main',
    bindings: reduceBindings,
  }),
  reduceStatsColumns: {
    name: 'reduce_stats_columns', sources: [welford, epilogue, rescueChunk, reduceStatsColumns], entryPoint: 'main', bindings: reduceRangeBindings,
  } as KernelDef,
  /** Entry `main` (scalar, any dtype and override), `main_vec4` (float32 runs of 4k) or `main_vec4_columns` (float32 rows of 4k, S = 1). */
  reduceStatsSerial: (entryPoint: 'main' | 'main_vec4' | 'main_vec4_columns'): KernelDef => ({
    name: 'reduce_stats_serial', sources: [welford, epilogue, rescueChunk, quadStats, reduceStatsSerial], entryPoint, bindings: reduceRangeBindings,
  }),
  finalizeStats: {
    name: 'finalize_stats', sources: [welford, finalizeStats], entryPoint: 'main',
    bindings: ['uniform', 'read', 'write', 'write', 'write'],
  } as KernelDef,
  /** Entry `main_spans` or `main_features`. */
  normalizeRows: (subgroups: boolean, entryPoint: string): KernelDef => ({
    name: subgroups ? 'normalize_rows+subgroup' : 'normalize_rows+workgroup',
    sources: [subgroups ? mergeSubgroup : mergeWorkgroup, welford, epilogue, normalizeRows], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'write', 'read', 'write'],
  }),
  /** Entry `main` (scalar), `main_vec4_spans` or `main_vec4_features`. */
  normalizeSerial: (entryPoint: string): KernelDef => ({
    name: 'normalize_serial', sources: [welford, epilogue, quadStats, normalizeSerial], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'write', 'write', 'write', 'read', 'write'],
  }),
  foldAffine: {
    name: 'fold_affine', sources: [foldAffine], entryPoint: 'main',
    bindings: ['uniform', 'read', 'read', 'read', 'write'],
  } as KernelDef,
  /** Entry `main` (scalar, any row kind), `main_pairs` (float16 output) or `main_vec4_planes|runs|features|pixels`. */
  applyNorm: (entryPoint: string): KernelDef => ({
    name: 'apply_norm', sources: [epilogue, applyNorm], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'write'],
  }),
  /** x + residual (the staged path's sum), or a dtype conversion. */
  addResidual: {
    name: 'add_residual', sources: [epilogue, addResidual], entryPoint: 'main', bindings: ['uniform', 'read', 'read', 'write'],
  } as KernelDef,
  /** Backward: saved mean and rstd from moments or running statistics. */
  savedStats: {
    name: 'saved_stats', sources: [savedStats], entryPoint: 'main', bindings: ['uniform', 'read', 'read', 'write', 'write'],
  } as KernelDef,
  /** Backward stage 1: `main_rows` or `main_columns` cell sums. */
  reduceGrad: (entryPoint: RowsPass['entry'] | ColumnsPass['entry']): KernelDef => ({
    name: 'reduce_grad', sources: [reduceGrad], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'write'],
  }),
  /** Backward stage 2: `main_groups` (dx table) or `main_params` (dweight, dbias). */
  mergeGrad: (entryPoint: 'main_groups' | 'main_params'): KernelDef => ({
    name: 'merge_grad', sources: [gradCommon, mergeGrad], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'write', 'write', 'write'],
  }),
  /** Backward stage 3: dx. */
  applyGrad: {
    name: 'apply_grad', sources: [gradCommon, applyGrad], entryPoint: 'main', bindings: ['uniform', 'read', 'read', 'read', 'read', 'write'],
  } as KernelDef,
  /** The backward fused for software adapters: `main_spans`, `main_rows` or their `_vec4` entries. */
  gradSerial: (entryPoint: GradSerialEntry): KernelDef => ({
    name: 'grad_serial', sources: [gradCommon, gradSerial], entryPoint,
    bindings: ['uniform', 'read', 'read', 'read', 'read', 'read', 'write', 'write', 'write'],
  }),
  /** y = alpha * a + beta * b (or beta * y, in place): `main` or `main_vec4` (count % 4 == 0). */
  axpby: (vec4: boolean): KernelDef => ({
    name: 'axpby', sources: [axpby], entryPoint: vec4 ? 'main_vec4' : 'main', bindings: ['uniform', 'read', 'read', 'write'],
  }),
};
