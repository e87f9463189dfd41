/**
 * Backward passes of the normalizations (PyTorch's native_*_norm_backward): the validated
 * GradSpec both backends execute, and the GPU dispatch plan of its stages.
 *
 * Math, per statistics group of M elements with saved mean and rstd, x̂ = (x - mean) * rstd and
 * g = dy * weight (weight 1 when absent):
 *   batch statistics  dx = rstd * (g - mean(g) - x̂ * mean(g * x̂))
 *   rms               dx = rstd * (g - x̂ * mean(g * x̂)), x̂ = x * rstd
 *   running (BN eval) dx = g * rstd
 *   dweight[k] = Σ dy * x̂, dbias[k] = Σ dy over the elements of parameter k.
 * A saved float32 mean carries the rounding of its 1e4 offset, which x̂ would amplify: the
 * stages also sum d = x - mean (exact for x near the mean) and take the group's centre as
 * mean + Σd / M, so a backward from rounded statistics is as accurate as one from exact ones.
 *
 * Stages (shaders/*_grad.wgsl, CPU twins in src/cpu/grad.ts):
 *   saved_stats   (mean, rstd) from the moments of x or the running statistics
 *   reduce_grad   stage-1 sums into "cells": for BN/IN/GN one cell per (block, chunk, channel),
 *                 where group and parameter are both constant (rows of a plane, or columns of
 *                 channels-last pixels); for LayerNorm/RMSNorm one cell per (row, chunk) with
 *                 weights applied, and, for dweight/dbias, column sums over rows
 *   merge_grad    per group: the dx coefficients; per parameter: dweight, dbias
 *   apply_grad    dx, elementwise
 * On software adapters (or with `kernels: 'serial'`) grad_serial.wgsl fuses reduce_grad, the
 * group merge, apply_grad and the parameter sums into one dispatch of serial invocations (no
 * barriers, which CPU-backed adapters handle badly, and few dispatches, which they pay for
 * dearly): it writes dweight and dbias itself (DIRECT) or per-block cells that merge_grad's
 * parameter merge adds up.
 */
import { check } from '../errors';
import { checkBoolean, checkOptions, describe } from './checks';
import { linearGrid, serialWorkgroup } from './gpu-plan';
import type { AdapterTraits } from './gpu-plan';
import type {
  BatchNormOptions, GroupNormOptions, InstanceNormOptions, LayerNormOptions, RmsNormOptions, TensorHandle,
} from './options';
import type { NormSpec, OpName } from './spec';
import type { StageTraffic, Traffic } from './traffic';
import { elementCount, groupCount, groupSize } from './view';

/** The normalizations with a backward. */
export type NormOp = Exclude<OpName, 'moments'>;

/** Which gradients to compute, as PyTorch's `output_mask`. */
export interface OutputMask {
  /** dx. Default: true. */
  input?: boolean;
  /** dweight. Default: true when the forward options pass a weight. */
  weight?: boolean;
  /** dbias. Default: true when the forward options pass a bias (RMSNorm has none). */
  bias?: boolean;
}

/**
 * Per-group statistics a forward saved for its backward, as `torch.native_*_norm` return them:
 * float32 tensors of one entry per statistics group (BatchNorm [C], LayerNorm/RMSNorm one per
 * row, InstanceNorm [N*C], GroupNorm [N*G]). RMSNorm's mean is zeros (and may be left out).
 */
export interface SavedStats<T extends TensorHandle = TensorHandle> {
  mean?: T;
  rstd: T;
}

/** What a backward computes: the outputs of its mask. */
export interface GradSpec {
  /** The forward's spec (never updating running statistics). */
  readonly norm: NormSpec;
  readonly outputs: Required<OutputMask>;
  readonly hasWeight: boolean;
  /** Length of weight, bias and their gradients. */
  readonly params: number;
}

/** Length of the affine parameters of `spec`: channels, or the normalized size. */
export function paramCount(spec: NormSpec): number {
  const v = spec.view;
  return spec.paramQ === 0 ? v.s / spec.paramS : v.q * spec.paramQ;
}

/**
 * The GradSpec of a backward of `norm` with forward options `options` (whose weight and bias
 * say which gradients are computed by default) and an optional `outputMask`. The fused
 * epilogues and float16 have no backward yet.
 */
export function gradSpec(norm: NormSpec, options: object, outputMask: unknown): GradSpec {
  const o = options as { weight?: unknown; bias?: unknown; residual?: unknown; activation?: unknown; returnSum?: unknown; outputDtype?: unknown };
  check(
    o.residual === undefined && o.activation === undefined && o.returnSum === undefined, 'INVALID_ARGUMENT',
    `${norm.op} backward: the fused epilogues (residual, activation, returnSum) have no backward yet`,
  );
  check(
    (norm.dtype ?? 'float32') === 'float32' && (o.outputDtype === undefined || o.outputDtype === 'float32'), 'INVALID_DTYPE',
    `${norm.op} backward: float16 has no backward yet (float32 inputs and outputs only)`,
  );
  const mask = checkOptions(outputMask as OutputMask | undefined, 'outputMask');
  const hasWeight = o.weight !== undefined;
  const outputs = {
    input: checkBoolean(mask.input, 'outputMask.input', true),
    weight: checkBoolean(mask.weight, 'outputMask.weight', hasWeight),
    bias: checkBoolean(mask.bias, 'outputMask.bias', o.bias !== undefined),
  };
  check(!(norm.op === 'rmsNorm' && outputs.bias), 'INVALID_ARGUMENT', 'rmsNorm has no bias: outputMask.bias must be false');
  return { norm: { ...norm, updateRunning: false }, outputs, hasWeight, params: paramCount(norm) };
}

/** Check a saved statistic: undefined, or a tensor handle of `groups` elements. */
export function checkSaved(t: unknown, name: string, groups: number): void {
  if (t === undefined) return;
  check(typeof t === 'object' && t !== null && 'size' in t && 'shape' in t, 'INVALID_ARGUMENT', `${name} must be a Tensor, got ${describe(t)}`);
  const h = t as TensorHandle;
  check((h.dtype ?? 'float32') === 'float32', 'INVALID_DTYPE', `${name} must be a float32 tensor`);
  check(h.size === groups, 'PARAM_LENGTH_MISMATCH', `${name} has ${h.size} elements, expected one per statistics group (${groups})`);
}

// ---- GPU plan ----

export const GRAD_WG = 256;
export const MERGE_WG = 64;
/** Elements each invocation sums before the workgroup merge: bounds float32 rounding per lane. */
const PER_LANE = 16;
/** Row chunks of the columns entry at most. */
const MAX_ROW_CHUNKS = 1024;
/** grad_serial.wgsl's block of elements. */
const SERIAL_BLOCK = 64;
/**
 * grad_serial invocations that keep a small CPU adapter busy (four workgroups of four SIMD
 * lanes): fewer units of work per block than this and the blocks get their own invocations.
 */
const SERIAL_MIN_INVOCATIONS = 16;
/** Blocks whose parameter sums DIRECT adds in order (a 64-term float32 sum at most). */
const MAX_DIRECT_BLOCKS = 64;
/** Rows per main_rows invocation at most: a column cell is a plain sum of this many terms. */
const MAX_ROW_BLOCK = 64;

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const pow2Below = (n: number, cap: number) => Math.min(cap, 2 ** Math.max(0, Math.round(Math.log2(Math.max(1, n)))));

/** reduce_grad.wgsl's main_rows: per (row, chunk) sums of rows of `width`. */
export interface RowsPass {
  entry: 'main_rows';
  /** Uniforms: rows, width, tw, chunkLen, chunks, groupDiv, groupMod, groupMul, cellC. */
  u32: number[];
  workgroups: [number, number, number];
  cells: number;
  weighted: boolean;
}

/** reduce_grad.wgsl's main_columns: per (block, row chunk, column) sums. */
export interface ColumnsPass {
  entry: 'main_columns';
  /** Uniforms: blocks, rows per block, width, rowsPerChunk, rowChunks, tx, groupMul, colDiv. */
  u32: number[];
  workgroups: [number, number, number];
  cells: number;
  /** Statistics per row from the group table (LayerNorm/RMSNorm parameter sums). */
  rowStats: boolean;
}

/** merge_grad.wgsl's merge over cells laid out [O, R, cellC]. */
export interface MergePass {
  /** Uniforms: O, Q, R, cellC, cg, M. */
  u32: number[];
  workgroups: [number, number, number];
}

/** grad_serial.wgsl's entry points. */
export type GradSerialEntry = 'main_spans' | 'main_spans_vec4' | 'main_lanes' | 'main_rows' | 'main_rows_vec4';

/** grad_serial.wgsl: the group sums, table, dx and parameter sums of every group in one dispatch. */
export interface FusedPass {
  entry: GradSerialEntry;
  /** Uniforms: o, p, q, s, paramQ, paramS, blockRows, rowBlock. */
  u32: number[];
  workgroups: [number, number, number];
  /** Workgroup size: enough workgroups for every core even with few invocations. */
  wg: number;
  /** It writes dweight and dbias itself (main_spans, main_lanes). */
  direct: boolean;
  /** The vec4 cells it writes for merge_grad's main_params (0: none). */
  cells: number;
  why: string;
}

export interface GradPlan {
  /** Software adapters: the fused kernel, which replaces groupCells, groups, paramCells and apply. */
  fused: FusedPass | null;
  /** Stage 1 for the group sums (null: BatchNorm eval needs none for dx). */
  groupCells: RowsPass | ColumnsPass | null;
  groups: MergePass | null;
  /** Stage 1 for the parameter sums, when it is not the group cells (LayerNorm/RMSNorm). */
  paramCells: ColumnsPass | null;
  params: MergePass | null;
  /** apply_grad.wgsl: uniforms count, width, groupDiv, groupMod, groupMul, columnGroupDiv, paramDiv, paramMod, tw. */
  apply: { u32: number[]; workgroups: [number, number, number] } | null;
}

function rowsPass(rows: number, width: number, l: NormSpec['rows'], cellC: number, weighted: boolean, maxDim: number): RowsPass {
  const tw = pow2Below(ceilDiv(width, 4), GRAD_WG);
  const chunkLen = tw * PER_LANE;
  const chunks = ceilDiv(width, chunkLen);
  const blocks = ceilDiv(rows, GRAD_WG / tw);
  check(chunks <= maxDim && blocks <= maxDim * maxDim, 'TENSOR_TOO_LARGE', `${rows} rows of ${width} elements are too many for one backward dispatch`);
  const [gx, gy] = linearGrid(blocks, 1, maxDim);
  return {
    entry: 'main_rows', u32: [rows, width, tw, chunkLen, chunks, l.groupDiv, l.groupMod, l.groupMul, cellC],
    workgroups: [gx, gy, chunks], cells: rows * chunks, weighted,
  };
}

function columnsPass(
  blocks: number, rows: number, width: number, groupMul: number, colDiv: number, rowStats: boolean, maxDim: number,
): ColumnsPass {
  const tx = Math.min(64, 2 ** Math.ceil(Math.log2(width)));
  const rowChunks = Math.min(ceilDiv(rows, (GRAD_WG / tx) * PER_LANE), MAX_ROW_CHUNKS);
  const rowsPerChunk = ceilDiv(rows, rowChunks);
  const chunks = ceilDiv(rows, rowsPerChunk);
  // Tiles, row chunks and blocks fold into one linear workgroup index over grid x and y.
  const total = ceilDiv(width, tx) * chunks * blocks;
  check(total <= maxDim * maxDim, 'TENSOR_TOO_LARGE', `a backward over ${blocks} blocks of [${rows}, ${width}] exceeds the dispatch limits`);
  return {
    entry: 'main_columns', u32: [blocks, rows, width, rowsPerChunk, chunks, tx, groupMul, colDiv],
    workgroups: linearGrid(total, 1, maxDim), cells: blocks * chunks * width, rowStats,
  };
}

/**
 * grad_serial.wgsl for `spec`: main_rows for LayerNorm/RMSNorm (blocks of rows when parameter
 * sums are wanted), main_lanes for vec4-aligned channels-last pixels, main_spans otherwise
 * (vec4 where spans are); DIRECT where every block fits one invocation's loop.
 */
function fusedPass(spec: GradSpec, maxDim: number): FusedPass {
  const n = spec.norm;
  const v = n.view;
  const wantParams = spec.outputs.weight || spec.outputs.bias;
  const u32 = (blockRows: number, rowBlock: number) => [v.o, v.p, v.q, v.s, n.paramQ, n.paramS, blockRows, rowBlock];
  if (n.rows.kind === 'features') {
    // [rows, 1, 1, width]: blocks of rows, so that the column cells are few (long serial
    // invocations in small workgroups also measured faster on SwiftShader than one row each).
    const vec4 = v.s % 4 === 0;
    const rowBlock = Math.min(MAX_ROW_BLOCK, Math.max(1, Math.floor(v.o / SERIAL_MIN_INVOCATIONS)));
    const blocks = ceilDiv(v.o, rowBlock);
    const wg = serialWorkgroup(blocks);
    return {
      entry: vec4 ? 'main_rows_vec4' : 'main_rows', u32: u32(1, rowBlock), workgroups: linearGrid(blocks, wg, maxDim), wg,
      direct: false, cells: wantParams ? blocks * v.s : 0,
      why: `software adapter: ${blocks} serial invocations of ${rowBlock} row(s), two passes, no barriers${vec4 ? ', vec4 loads' : ''}`,
    };
  }
  // Channels-last pixels whose groups tile vec4s (S dividing 4, or a multiple of 4).
  const lanes = n.paramS === 1 && (v.q * v.s) % 4 === 0 && (4 % v.s === 0 || v.s % 4 === 0);
  const vec4 = !lanes && n.paramS % 4 === 0;
  const units = lanes ? v.q * v.s / Math.max(4, v.s) : v.q;
  const direct = wantParams && (v.o === 1 || (v.o <= MAX_DIRECT_BLOCKS && units >= SERIAL_MIN_INVOCATIONS));
  const invocations = direct ? units : units * v.o;
  const wg = serialWorkgroup(invocations);
  return {
    entry: lanes ? 'main_lanes' : vec4 ? 'main_spans_vec4' : 'main_spans',
    u32: u32(lanes ? SERIAL_BLOCK : Math.max(1, Math.floor(SERIAL_BLOCK / n.paramS)), 1),
    workgroups: linearGrid(invocations, wg, maxDim), wg, direct, cells: wantParams && !direct ? v.o * spec.params : 0,
    why: `software adapter: ${invocations} serial invocations, two passes, no barriers${lanes || vec4 ? ', vec4 loads' : ''}`
      + `${direct ? ', dweight and dbias written directly' : ''}`,
  };
}

/**
 * The stages of a backward on an adapter, sized for its dispatch limits: grad_serial where the
 * forward would pick its serial kernels (software adapters, or `kernels: 'serial'`).
 */
export function planGrad(spec: GradSpec, a: Pick<AdapterTraits, 'maxWorkgroupsPerDim' | 'software' | 'prefer'>): GradPlan {
  const n = spec.norm;
  const v = n.view;
  const l = n.rows;
  const maxDim = a.maxWorkgroupsPerDim;
  const groups = groupCount(v);
  const count = elementCount(v);
  const rows = count / l.width;
  const running = n.mode === 'running';
  const wantParams = spec.outputs.weight || spec.outputs.bias;
  const merge = (u32: number[], invocations: number): MergePass => ({ u32, workgroups: linearGrid(invocations, MERGE_WG, maxDim) });
  const C = spec.params;

  if (a.prefer === 'serial' || (a.prefer === 'auto' && a.software)) {
    const fused = fusedPass(spec, maxDim);
    // The cells are [blocks, 1, C] with Σ dy * x̂ (merge_grad's SCALED).
    const params = fused.cells ? merge([fused.cells / C, 1, 1, C, 1, groupSize(v)], C) : null;
    return { fused, groupCells: null, groups: null, paramCells: null, params, apply: null };
  }

  let groupCells: RowsPass | ColumnsPass | null = null;
  let paramCells: ColumnsPass | null = null;
  let groupsPass: MergePass;
  let paramsPass: MergePass | null = null;
  if (l.kind === 'features') {
    // LayerNorm/RMSNorm: a row is a group; parameter sums are column sums over all rows.
    const r = rowsPass(rows, l.width, l, 1, spec.hasWeight, maxDim);
    groupCells = r;
    groupsPass = merge([groups, 1, r.u32[4], 1, 1, groupSize(v)], groups);
    if (wantParams) {
      paramCells = columnsPass(1, rows, l.width, 0, 1, true, maxDim);
      paramsPass = merge([1, 1, paramCells.u32[4], C, 1, groupSize(v)], C);
    }
  } else {
    // BN/IN/GN: cells (block, chunk, channel) hold one group and one parameter each.
    const cg = C / v.q;
    let R: number;
    if (!running || wantParams) {
      if (l.kind === 'planes') {
        const r = rowsPass(rows, l.width, l, C, false, maxDim);
        groupCells = r;
        R = (rows / C / v.o) * r.u32[4];
      } else {
        const c = columnsPass(v.o, rows / v.o, C, l.groupMul, l.columnGroups === 2 ? l.columnGroupDiv : 1, false, maxDim);
        groupCells = c;
        R = c.u32[4];
      }
    } else {
      R = 0;
    }
    groupsPass = merge([v.o, v.q, R, C, cg, groupSize(v)], groups);
    if (wantParams) paramsPass = merge([v.o, v.q, R, C, cg, groupSize(v)], C);
  }

  let apply: GradPlan['apply'] = null;
  if (spec.outputs.input) {
    const tw = pow2Below(l.width, GRAD_WG);
    const rowsPerGroup = (GRAD_WG / tw) * Math.max(1, Math.round(8 / ceilDiv(l.width, tw)));
    apply = {
      u32: [count, l.width, l.groupDiv, l.groupMod, l.groupMul, l.columnGroupDiv, l.paramDiv, l.paramMod, tw],
      workgroups: [Math.min(ceilDiv(rows, rowsPerGroup), maxDim), 1, 1],
    };
  }
  return { fused: null, groupCells, groups: groupsPass, paramCells, params: paramsPass, apply };
}

// ---- explainBackward: stages and traffic (src/plan/traffic.ts's counting rules) ----

/** One stage of a backward as `engine.explainBackward` reports it (a KernelChoice). */
export interface GradStage extends StageTraffic {
  stage: string;
  variant: string;
  workgroups: readonly number[];
  why?: string;
}

const F32 = 4;
const CELL = 16;
const TABLE_ENTRY = 32;

/** Bytes of x (and of dy and dx), of the per-group saved statistics and of one parameter vector. */
function gradParts(spec: GradSpec) {
  const v = spec.norm.view;
  return { x: elementCount(v) * F32, saved: 2 * groupCount(v) * F32, table: groupCount(v) * TABLE_ENTRY, param: spec.params * F32 };
}

/** Bytes of the gradients `spec.outputs` asks for. */
function resultBytes(spec: GradSpec): number {
  const p = gradParts(spec);
  const o = spec.outputs;
  return (o.input ? p.x : 0) + ((o.weight ? 1 : 0) + (o.bias ? 1 : 0)) * p.param;
}

const traffic = (readBytes: number, writeBytes: number, inputPasses: number): StageTraffic => (
  { readBytes, writeBytes, dispatches: 1, inputPasses }
);

/** The stages of a GPU backward plan with their bytes: x and dy count once per pass over them. */
export function gradStages(spec: GradSpec, plan: GradPlan): GradStage[] {
  const p = gradParts(spec);
  const o = spec.outputs;
  const weight = spec.hasWeight ? p.param : 0;
  const dx = o.input ? p.x : 0;
  const params = ((o.weight ? 1 : 0) + (o.bias ? 1 : 0)) * p.param;
  const out: GradStage[] = [];
  if (plan.fused) {
    const f = plan.fused;
    // Sums (none with MODE running), then dx and the parameter sums, reading x and dy again;
    // main_rows writes and reads back its rows' tables.
    const passes = (spec.norm.mode === 'running' ? 0 : 1) + (o.input || params ? 1 : 0);
    const table = f.entry.startsWith('main_rows') ? p.table : 0;
    out.push({ stage: 'gradSerial', variant: f.entry.replace('main_', ''), workgroups: f.workgroups, why: f.why,
      ...traffic(passes * 2 * p.x + p.saved + weight + table, table + f.cells * CELL + dx + (f.direct ? params : 0), passes) });
  }
  if (plan.groupCells) {
    const c = plan.groupCells;
    out.push({ stage: 'reduceGrad', variant: c.entry.replace('main_', ''), workgroups: c.workgroups, ...traffic(2 * p.x + p.saved / 2 + weight, c.cells * CELL, 1) });
  }
  if (plan.groups) {
    const cells = plan.groupCells ? plan.groupCells.cells * CELL : 0;
    out.push({ stage: 'mergeGrad', variant: 'groups', workgroups: plan.groups.workgroups, ...traffic(cells + p.saved + weight, p.table, 0) });
  }
  if (plan.paramCells) {
    const c = plan.paramCells;
    out.push({ stage: 'reduceGrad', variant: `${c.entry.replace('main_', '')}-params`, workgroups: c.workgroups, ...traffic(2 * p.x + p.table, c.cells * CELL, 1) });
  }
  if (plan.params) {
    const cells = (plan.paramCells ?? plan.groupCells)?.cells ?? plan.fused!.cells;
    out.push({ stage: 'mergeGrad', variant: 'params', workgroups: plan.params.workgroups, ...traffic(cells * CELL + (plan.fused ? 0 : p.table), params, 0) });
  }
  if (plan.apply) {
    out.push({ stage: 'applyGrad', variant: 'scalar', workgroups: plan.apply.workgroups, ...traffic(2 * p.x + p.table + weight, dx, 1) });
  }
  return out;
}

/** The stages of the CPU backend's float64 twins (src/cpu/grad.ts): no dispatches. */
export function cpuGradStages(spec: GradSpec): GradStage[] {
  const p = gradParts(spec);
  const o = spec.outputs;
  const host = (stage: string, readBytes: number, writeBytes: number, inputPasses: number): GradStage => (
    { stage, variant: 'cpu-float64', workgroups: [], readBytes, writeBytes, dispatches: 0, inputPasses }
  );
  const weight = spec.hasWeight ? p.param : 0;
  // Σ (x - mean), then Σ g and Σ g * (x - centre) (none for BatchNorm inference).
  const out = spec.norm.mode === 'running' ? [] : [host('reduceGrad', 3 * p.x + p.saved + weight, p.table, 2)];
  if (o.weight || o.bias) out.push(host('paramGrad', 2 * p.x + p.table, 2 * p.param, 1));
  if (o.input) out.push(host('applyGrad', 2 * p.x + p.table + weight, p.x, 1));
  return out;
}

/** The moments (biased variance) saved_stats derives a forward's saved statistics from. */
export const momentsOf = (spec: NormSpec): NormSpec => ({ ...spec, mode: 'moments', correction: 0, updateRunning: false, outputDtype: 'float32' });

/** saved_stats after momentsOf (or on BatchNorm inference's running statistics): `workgroups` null on the CPU. */
export function savedStatsStage(spec: GradSpec, workgroups: readonly number[] | null): GradStage {
  const saved = gradParts(spec).saved;
  return {
    stage: 'savedStats', variant: workgroups ? spec.norm.mode : 'cpu-float64', workgroups: workgroups ?? [],
    readBytes: saved, writeBytes: saved, dispatches: workgroups ? 1 : 0, inputPasses: 0,
  };
}

/**
 * A backward's totals against its ideal: one read of x and dy, one write of the gradients the
 * mask asks for (`ratio` 1).
 */
export function gradTotal(spec: GradSpec, stages: readonly StageTraffic[]): Traffic {
  const sum = (k: keyof StageTraffic) => stages.reduce((s, t) => s + t[k], 0);
  const readBytes = sum('readBytes');
  const writeBytes = sum('writeBytes');
  const idealReadBytes = 2 * gradParts(spec).x;
  const idealWriteBytes = resultBytes(spec);
  return {
    readBytes, writeBytes, dispatches: sum('dispatches'), inputPasses: sum('inputPasses'),
    idealReadBytes, idealWriteBytes, ratio: (readBytes + writeBytes) / (idealReadBytes + idealWriteBytes),
  };
}

/** The forward options of each op. */
export interface NormOptionsOf {
  batchNorm: BatchNormOptions;
  layerNorm: LayerNormOptions;
  rmsNorm: RmsNormOptions;
  instanceNorm: InstanceNormOptions;
  groupNorm: GroupNormOptions;
}

/** Options of a backward: the forward's, plus the saved statistics and the output mask. */
export type BackwardOptions<O extends NormOp, T extends TensorHandle = TensorHandle> = NormOptionsOf[O] & {
  /** From `normForward`; absent: the statistics are computed again from x (or the running ones). */
  saved?: SavedStats<T>;
  /** Default: dx, and dweight/dbias where the options pass weight/bias. */
  outputMask?: OutputMask;
};
