// WebGPU's flag values are fixed by the spec; naming them here keeps normgpu importable where
// the GPUBufferUsage/GPUMapMode/GPUShaderStage globals do not exist (the CPU fallback, and
// Node before Dawn is loaded).
export const BufferUsage = {
  MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200,
} as const;
export const MAP_READ = 0x1;
export const SHADER_STAGE_COMPUTE = 0x4;
