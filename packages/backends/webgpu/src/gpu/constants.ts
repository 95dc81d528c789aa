/**
 * WebGPU flag values, spelled out so the package needs no `GPUBufferUsage` global (Dawn's
 * node addon only installs those globals on request, and the values are fixed by the spec).
 */
export const BufferUsage = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  INDIRECT: 0x0100,
  QUERY_RESOLVE: 0x0200,
} as const

/** `GPUMapMode.READ`. */
export const MAP_READ_MODE = 0x0001

/** Storage buffers kernels read and write (plus copies in and out). */
export const STORAGE_RW = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC
