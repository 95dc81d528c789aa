/**
 * Kernel program descriptors (the onnxruntime-web pattern) and the per-device pipeline cache.
 */

/** Grid of one dispatch: workgroup counts, or an indirect-arguments buffer written on the GPU. */
export type Dispatch = readonly [number, number, number] | { readonly indirect: GPUBuffer; readonly offset: number }

/** What one run of a program needs besides its storage buffers. */
export interface RunData {
  readonly dispatch: Dispatch
  /** Contents of the uniform buffer bound after the storage buffers (16-byte multiple). */
  readonly uniforms: Uint32Array
}

/**
 * A compute kernel: WGSL source built from init-time constants, and a cheap per-run step
 * that turns run parameters into a grid and uniforms.
 */
export interface KernelProgram<P> {
  /** Label of every GPU object of this kernel and key of its profile entry. */
  readonly name: string
  /** Init-time facts only (never shapes that vary per batch): one pipeline per key and device. */
  readonly cacheKey: string
  getShaderSource(): string
  getRunData(params: P): RunData
}

/** Largest workgroup count per grid dimension that every WebGPU device accepts. */
export const MAX_GRID_X = 32768

/** A 1-D count of workgroups spread over x and y (kernels rebuild the linear id). */
export function grid1d(workgroups: number): readonly [number, number, number] {
  const n = Math.max(1, Math.ceil(workgroups))
  return n <= MAX_GRID_X ? [n, 1, 1] : [MAX_GRID_X, Math.ceil(n / MAX_GRID_X), 1]
}

/** Packs mixed u32/i32/f32 values into a uniform block padded to 16 bytes. */
export function uniforms(values: readonly (number | { f32: number })[]): Uint32Array {
  // runs for every kernel of every batch: a plain loop, and the f32 view only when a value needs it
  const out = new Uint32Array(Math.max(4, Math.ceil(values.length / 4) * 4))
  let f: Float32Array | null = null
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v === 'number') out[i] = v >>> 0
    else (f ??= new Float32Array(out.buffer))[i] = v.f32
  }
  return out
}

/**
 * Compiled pipelines per device: `WeakMap<GPUDevice, Map<cacheKey, pipeline>>`, so a
 * pipeline lives exactly as long as its device and is compiled once per (device, key).
 */
export class ProgramCache {
  private static readonly perDevice = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>()

  /** The pipeline of `program` on `device`, compiled on first use. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any program: only its name, cacheKey and source are read
  static get(device: GPUDevice, program: KernelProgram<never> | KernelProgram<any>): GPUComputePipeline {
    let map = ProgramCache.perDevice.get(device)
    if (!map) ProgramCache.perDevice.set(device, (map = new Map()))
    let pipeline = map.get(program.cacheKey)
    if (!pipeline) {
      const module = device.createShaderModule({ label: program.name, code: program.getShaderSource() })
      pipeline = device.createComputePipeline({ label: program.name, layout: 'auto', compute: { module, entryPoint: 'main' } })
      map.set(program.cacheKey, pipeline)
    }
    return pipeline
  }

  /** Compiles without blocking (`createComputePipelineAsync`), for warm-up before the first batch. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any program: only its name, cacheKey and source are read
  static async warm(device: GPUDevice, programs: readonly KernelProgram<any>[]): Promise<void> {
    let map = ProgramCache.perDevice.get(device)
    if (!map) ProgramCache.perDevice.set(device, (map = new Map()))
    await Promise.all(
      programs
        .filter((p) => !map!.has(p.cacheKey))
        .map(async (p) => {
          const module = device.createShaderModule({ label: p.name, code: p.getShaderSource() })
          const pipeline = await device.createComputePipelineAsync({ label: p.name, layout: 'auto', compute: { module, entryPoint: 'main' } })
          map!.set(p.cacheKey, pipeline)
        }),
    )
  }

  /** Number of pipelines compiled for `device` (for tests and diagnostics). */
  static size(device: GPUDevice): number {
    return ProgramCache.perDevice.get(device)?.size ?? 0
  }
}
