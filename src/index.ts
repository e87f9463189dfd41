/**
 * normgpu: WebGPU normalization for web ML, in PyTorch's vocabulary, with an exact CPU
 * reference backend.
 *
 * ```ts
 * const engine = await createEngine();
 * const x = engine.tensor(data, [8, 64, 56, 56]);
 * const y = engine.groupNorm(x, { numGroups: 32 });
 * console.log(await y.read());
 * ```
 */
export {
  createEngine, Engine, type DeviceLostPolicy, type Explanation, type Gradients, type MemoryInfo, type NormWithSum, type TensorOptions, type WrapOptions,
} from './api/engine';
export { Tensor } from './api/tensor';
export * from './api/options';
export { NormGpuError, type ErrorCode } from './errors';
export type { AdapterSummary } from './gpu/device';
export type { DeviceLoss, KernelChoice, Recording } from './backend';
export type { StageTraffic, Traffic } from './plan/traffic';
export type { KernelFamily, TuningChoice, TuningEntry, TuningJSON } from './plan/tuning';
export type { AutotuneOptions, TuningStore } from './api/tuning';
export type { GroupView } from './plan/view';
export type { OpName } from './plan/spec';
export type { BackwardOptions, NormOp, NormOptionsOf, OutputMask, SavedStats } from './plan/grad';
export { preprocess, planPreprocess, type ImageBytes, type ImageSource } from './api/preprocess';
export {
  IMAGE_PRESETS, LUMA_601, type ChannelOrder, type ImagePreset, type PreprocessOptions, type PreprocessSpec,
} from './plan/preprocess';
export {
  DatasetStats, emptyDatasetStats, finalizeDatasetStats, mergeDatasetStats,
  type DatasetProgress, type DatasetStatsOptions, type DatasetStatsPartial, type DatasetStatsResult, type DatasetTransform,
} from './api/dataset-stats';
export {
  MinMaxScaler, StandardScaler, type FeatureData, type MinMaxScalerOptions, type StandardScalerOptions,
} from './api/scalers';
export {
  BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,
  LayerNorm, Module, Parameter, RMSNorm, SGD,
  type BatchNormModuleOptions, type GroupNormModuleOptions, type InstanceNormModuleOptions, type LayerNormModuleOptions,
  type LoadStateDictOptions, type RmsNormModuleOptions, type SgdOptions, type StateDict, type StateDictInput,
} from './api/modules/index';
export {
  fromOrt, fromTfjs, ortWebGpuProvider, type FromPeerOptions, type OrtEnvLike, type OrtTensorLike, type OrtWebGpuProvider, type TfjsTensorLike,
} from './interop';
