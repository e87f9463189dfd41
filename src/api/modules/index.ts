/** The stateful modules (`torch.nn` normalization layers) and their optimizer. */
export { BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, type BatchNormModuleOptions } from './batch-norm';
export { GroupNorm, type GroupNormModuleOptions } from './group-norm';
export { InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, type InstanceNormModuleOptions } from './instance-norm';
export { LayerNorm, RMSNorm, type LayerNormModuleOptions, type RmsNormModuleOptions } from './layer-norm';
export { Module, Parameter, type LoadStateDictOptions, type StateDict, type StateDictInput } from './module';
export { SGD, type SgdOptions } from './sgd';
