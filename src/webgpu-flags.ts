// WebGPU's flag values are fixed by the spec; naming them here keeps normgpu importable where
// the GPUBufferUsage/GPUMapMode/GPUShaderStage globals do not exist (the CPU fallback, and
// Node before Dawn is loaded). Beside the Backend contract: the API checks the usage of a
// wrapped buffer with them, the WebGPU backend makes its buffers with them.
export const BufferUsage = {
  MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200,
} as const;
export const MAP_READ = 0x1;
/** Tensors and temporaries: bound as storage, copied from and to. */
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
/** Readback staging buffers. */
export const STAGING_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;
export const SHADER_STAGE_COMPUTE = 0x4;
