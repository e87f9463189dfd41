/** Every error normgpu throws on bad input carries one of these codes. */
export type ErrorCode =
  | 'INVALID_SHAPE' // a dimension that is not a non-negative integer, or an unsupported rank
  | 'EMPTY_TENSOR' // a tensor, or a reduction group, with no elements
  | 'DATA_LENGTH_MISMATCH' // data or buffer size does not match the shape
  | 'INVALID_LAYOUT' // not 'channels-first' / 'channels-last'
  | 'PARAM_LENGTH_MISMATCH' // weight, bias or running statistics of the wrong length
  | 'GROUPS_NOT_DIVISIBLE' // numGroups does not divide the channel count
  | 'NORMALIZED_SHAPE_MISMATCH' // normalizedShape is not the input's trailing dims
  | 'INVALID_EPS' // eps not finite or negative
  | 'INVALID_MOMENTUM' // momentum outside [0, 1]
  | 'TOO_FEW_VALUES' // batch-norm training with one value per channel (PyTorch raises too)
  | 'RUNNING_STATS_REQUIRED' // batch-norm inference without running statistics
  | 'RUNNING_STATS_NOT_TENSOR' // training updates running statistics in place: they must be Tensors
  | 'INVALID_AXES' // moments axes out of range, repeated, or not a supported pattern
  | 'INVALID_ARGUMENT' // any other malformed option
  | 'INVALID_DTYPE' // an unknown dtype, or a tensor of a dtype the operand does not take (float16 weights)
  | 'RESIDUAL_MISMATCH' // a residual of another shape, layout or dtype than the input
  | 'GRADIENT_MISMATCH' // a backward's dy of another shape or layout than its input
  | 'INVALID_DATA' // float data that is another typed array, or an array holding a non-number
  | 'DISPOSED_TENSOR' // use of a tensor after dispose()
  | 'FOREIGN_TENSOR' // a tensor that belongs to another engine
  | 'DISPOSED_ENGINE' // use of an engine (or a read of its tensors) after dispose()
  | 'DEVICE_LOST' // the GPUDevice was lost (driver reset, destroy()): the message gives the reason
  | 'GPU_ERROR' // WebGPU reported a validation or internal error for the work behind a result
  | 'OUT_OF_MEMORY' // WebGPU could not allocate the memory a call needs
  | 'ALIASED_OPERANDS' // one tensor passed as two operands where one of them is written in place
  | 'TENSOR_TOO_LARGE' // a tensor beyond the device's buffer or binding size limit
  | 'BUFFER_MAPPED' // fromGPUBuffer of a buffer that is mapped or pending a map
  | 'WEBGPU_UNAVAILABLE' // backend 'webgpu' asked for where no adapter can be had
  | 'EMPTY_IMAGE' // an image source with zero width or height
  | 'CHANNEL_MISMATCH' // image bytes not 1, 3 or 4 per pixel, or mean/std/tensor channels that do not match
  | 'CROP_TOO_LARGE' // a center crop larger than the (resized) image
  | 'ZERO_STD' // an image normalization std of 0 (or not finite)
  | 'IMAGE_SIZE_MISMATCH' // images of one batch that come out at different sizes (give resize or centerCrop)
  | 'UNSUPPORTED_SOURCE' // an image source this backend or environment cannot read (a GPUTexture on the CPU backend, a DOM image in Node)
  | 'NOT_FITTED' // a scaler used before fit/partialFit
  | 'FEATURE_MISMATCH' // scaler data whose feature count differs from the fitted one
  | 'STATS_MISMATCH' // dataset statistics (batches or partials) of different channels or resolution
  | 'STATE_DICT_MISMATCH' // a module's state dict with a missing or unexpected key, or a malformed entry
  | 'NO_FORWARD'; // a module's backward with no forward to differentiate (or after its state was replaced)

/** The one error class of normgpu: `code` says what was wrong, the message names it. */
export class NormGpuError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'NormGpuError';
    this.code = code;
  }
}

/** Throw a NormGpuError unless `condition` holds. */
export function check(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new NormGpuError(code, message);
}
