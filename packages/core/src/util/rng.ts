/**
 * Small seeded PRNGs. Deterministic across platforms (32-bit integer arithmetic only).
 */

/** mulberry32: a fast 32-bit generator returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Mixes several integers into one 32-bit seed (for per-batch, per-policy streams). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return h >>> 0
}

/** Standard normal samples by Box–Muller from a uniform generator. */
export function normal(random: () => number): () => number {
  let spare: number | null = null
  return () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    let u = 0
    while (u === 0) u = random()
    const v = random()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

/** Hash of a string to a 32-bit seed (FNV-1a). */
export function hashString(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** The PCG hash of the counter-based generators (the same u32 arithmetic as their WGSL twin). */
export function pcgHash(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0
  const x = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0
  return ((x >>> 22) ^ x) >>> 0
}

/**
 * Counter-based normal(0, std) values: element `2i` and `2i + 1` of the stream `seed` come
 * from one Box–Muller pair of PCG hashes of `i`, so any slice can be made on its own and a
 * GPU makes the same values (f32 transcendental rounding aside: within ~1e-6 relative) with
 * the `init-weights` kernel. Fills `out` with elements `first .. first + out.length` of the
 * stream (`first` even).
 * @example
 * const w = seededNormals(new Float32Array(4096), 7, 0.02) // the first 4096 values of stream 7
 */
export function seededNormals(out: Float32Array, seed: number, std: number, first = 0): Float32Array {
  if (first % 2 !== 0) throw new RangeError('seededNormals: first must be even')
  const s = pcgHash(seed >>> 0)
  const n = out.length
  for (let k = 0; k < n; k += 2) {
    const i = (first + k) / 2
    const h1 = pcgHash((i ^ s) >>> 0)
    const h2 = pcgHash((h1 ^ 0x9e3779b9) >>> 0)
    const u1 = Math.fround(Math.fround((h1 >>> 8) + 1) / 16777217)
    const u2 = Math.fround((h2 >>> 8) / 16777216)
    const r = Math.sqrt(-2 * Math.log(u1)) * std
    const a = 2 * Math.PI * u2
    out[k] = r * Math.cos(a)
    if (k + 1 < n) out[k + 1] = r * Math.sin(a)
  }
  return out
}

/** Stream ids of a seeded layer (router, gate, up, down), as the GPU generator uses them. */
export const seededWeightStreams = (seed: number) => ({ router: seed * 4, gate: seed * 4 + 1, up: seed * 4 + 2, down: seed * 4 + 3 })

/** The stream of a batch's synthetic hidden states. */
export const seededHiddenStream = (seed: number, batchId: number): number => mixSeed(seed, 0x68696464, batchId)

/**
 * Synthetic hidden states of stream `stream` (see {@link seededHiddenStream}): tokens × hidden,
 * normal(0, 1), the host values every backend's `syntheticHidden` makes where it computes.
 */
export function seededHidden(tokens: number, hidden: number, stream: number): Float32Array {
  return seededNormals(new Float32Array(tokens * hidden), stream, 1)
}
