/**
 * ExpertBufferStore: Expert Buffering as a core {@link ExpertStore}. Every expert's weights live
 * in host memory (a {@link WeightSource}); each device has `slots` expert slots on a
 * {@link ResidencyTarget}. Before a batch runs, `prepare` makes its active experts resident
 * (hits are free, misses upload), choosing victims with a pluggable {@link EvictionPolicy}.
 *
 * Atomicity: a batch is planned on a copy of the cache state, every missing expert is read from
 * the weight source, and only then are slots written and the new state adopted. A failed read
 * (a truncated checkpoint) leaves the resident set and every slot's contents as they were.
 */
import type { ExpertStore, StoreDevice, StoreRequest, StoreTelemetry } from '@moe-route/core'
import { isMoeError, maxOf } from '@moe-route/core'
import { ExpertCache, type CacheStep } from '../cache/expert-cache.js'
import { activeByDevice, splitExperts, type DeviceSplit } from '../cache/placement.js'
import { StoreErrorCodes, checkExpert, checkSlots, storeError } from '../errors.js'
import type { EvictionPolicy } from '../eviction/eviction-policy.js'
import { resolveEvictionPolicy } from '../eviction/policies.js'
import { hostTarget, type ResidencyTarget, type SlotBinding } from '../targets/residency-target.js'
import type { WeightSource } from '../weights/weight-source.js'

/** Makes device `device`'s target of `slots` slots of `slotBytes` bytes each. */
export type TargetFactory = (device: number, slots: number, slotBytes: number) => ResidencyTarget

/** Predicts the experts the next batch will need (called after each batch; prefetched in the background). */
export type NextBatchPredictor = (request: StoreRequest, store: ExpertBufferStore) => readonly number[]

/** Options of {@link ExpertBufferStore}. */
export interface ExpertBufferStoreOptions {
  /** Experts E of the layer. */
  readonly experts: number
  /** Slots per device, 1 … experts on the device. */
  readonly slots: number
  /** Devices (default 1); each hosts its placement's experts and has its own slots. */
  readonly devices?: number
  /** Expert→device (length E); default contiguous blocks. */
  readonly placement?: ArrayLike<number>
  /** Eviction policy or built-in name (default `lifo`, the paper's). */
  readonly eviction?: string | EvictionPolicy
  /**
   * A batch that needs more experts than slots goes past the cache: resident experts are used,
   * the others are streamed without evicting the decode working set (default true). With
   * false, the batch runs the paper's sequential load-evict sweep.
   */
  readonly bypassLargeBatches?: boolean
  /** Host weights; without them the store only accounts (`expertBytes` per load). */
  readonly weights?: WeightSource | (() => Promise<WeightSource>)
  /** Bytes per expert when there are no weights (accounting only; default 0). */
  readonly expertBytes?: number
  /** Residency target per device (default {@link hostTarget}). */
  readonly target?: TargetFactory
  /** Wait for the GPU queue after uploads so `uploadMs` includes the copy (default false: overlap). */
  readonly awaitUploads?: boolean
  /** Belady only: the active sets of the batches to come (per device streams are derived). */
  readonly future?: readonly (readonly number[])[]
  /** Prefetch after each batch (see {@link historyPredictor}). */
  readonly prefetch?: NextBatchPredictor
  /** Store name in telemetry (default `expert-buffer`). */
  readonly name?: string
}

/** Core's store telemetry plus per-batch detail. */
export interface ExpertBufferTelemetry extends StoreTelemetry {
  /** Bytes resident in slots after the batch, all devices. */
  readonly residentBytes: number
  /** Experts loaded into slots, in order (all devices). */
  readonly loaded: readonly number[]
  /** Experts evicted, in order. */
  readonly evicted: readonly number[]
  /** Experts of a bypassed batch that were not resident (streamed by `execute`, or left to the backend by `prepare`). */
  readonly streamed: readonly number[]
}

/** Computes one expert while it is resident (see {@link ExpertBufferStore.execute}). */
export type ExpertCompute = (expert: number, binding: SlotBinding) => void | Promise<void>

interface DeviceState {
  cache: ExpertCache
  target: ResidencyTarget | null
  lastActive: ReadonlySet<number>
}

/**
 * Expert Buffering store.
 * @example
 * const store = new ExpertBufferStore({ experts: 8, slots: 4, weights: memoryWeightSource(layer) })
 * const t = await store.prepare({ batchId: 0, active: [1, 5], counts })
 * const { buffer } = store.binding(5)! // WebGPU target: the slot buffer to bind
 */
export class ExpertBufferStore implements ExpertStore {
  readonly name: string
  readonly experts: number
  readonly slots: number
  readonly policy: EvictionPolicy
  readonly split: DeviceSplit
  readonly #options: ExpertBufferStoreOptions
  readonly #devices: DeviceState[]
  #weights: WeightSource | null = null
  #weightsPromise: Promise<WeightSource> | null = null
  #background: Promise<void> = Promise.resolve()
  #backgroundError: unknown = null
  #wastedSinceLast = 0
  #disposed = false

  constructor(options: ExpertBufferStoreOptions) {
    this.#options = options
    this.name = options.name ?? 'expert-buffer'
    if (!Number.isInteger(options.experts) || options.experts < 1) {
      throw storeError(StoreErrorCodes.STORE_EXPERT_UNKNOWN, `experts must be a positive integer, got ${String(options.experts)}`, { path: 'experts' })
    }
    this.experts = options.experts
    this.split = splitExperts(options.experts, options.devices ?? 1, options.placement)
    const maxLocal = maxOf(this.split.local.map((l) => l.length))
    checkSlots(options.slots, maxLocal)
    this.slots = options.slots
    this.policy = resolveEvictionPolicy(options.eviction ?? 'lifo')
    let futures: number[][][] | undefined
    if (this.policy.needsFuture) {
      if (!options.future) throw storeError(StoreErrorCodes.STORE_FUTURE_REQUIRED, `eviction policy '${this.policy.name}' needs options.future (the active sets to come)`, { path: 'future' })
      futures = this.split.local.map(() => [])
      options.future.forEach((active, i) => activeByDevice(active, this.split, `future[${i}]`).forEach((a, d) => a.length && futures![d]!.push(a)))
    }
    this.#devices = this.split.local.map((local, d) => ({
      cache: new ExpertCache(Math.min(this.slots, local.length), this.experts, this.policy, futures?.[d]),
      target: null,
      lastActive: new Set<number>(),
    }))
    if (typeof options.weights === 'object') this.#weights = options.weights
  }

  /** Bytes of one expert (slot size). */
  get expertBytes(): number {
    return this.#weights?.layout.bytes ?? this.#options.expertBytes ?? 0
  }

  /** Makes the batch's active experts resident (core's store contract). */
  prepare(request: StoreRequest): Promise<ExpertBufferTelemetry> {
    return this.#run(request)
  }

  /**
   * Runs a batch expert by expert in increasing id: each expert is made resident (or streamed,
   * for a bypassed batch) and `compute` is called while it is. This is how a batch with more
   * experts than slots runs without bypass (the paper's load–compute sweep).
   */
  execute(request: StoreRequest, compute: ExpertCompute): Promise<ExpertBufferTelemetry> {
    return this.#run(request, compute)
  }

  /** Experts resident on `device` (default 0), ascending. */
  resident(device = 0): readonly number[] {
    return this.#devices[device]?.cache.resident() ?? []
  }

  /**
   * Puts the store on a GPU backend's data path (core's contract; one device): slots are the
   * backend's, misses are read from `device.read` (bytes in the device layout) and uploaded
   * with `device.upload`. Before the first batch only.
   * @throws STORE_WEIGHTS_INVALID after a batch ran, or for a store over several devices.
   */
  attachDevice(device: StoreDevice): void {
    this.#check()
    if (this.#devices.length !== 1) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `a device pipeline runs one device; this store splits experts over ${this.#devices.length}`)
    if (this.#devices[0]!.target) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, 'attachDevice() must come before the first batch')
    if (device.slots < this.#devices[0]!.cache.slots) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `the device gives ${device.slots} slots, the store needs ${this.#devices[0]!.cache.slots}`)
    const slotBinding = (slot: number, expert: number, d: number): SlotBinding => ({ device: d, slot, expert })
    this.#devices[0]!.target = {
      kind: 'device',
      slots: device.slots,
      slotBytes: device.expertBytes,
      upload: (slot, expert, bytes) => device.upload(slot, expert, bytes),
      binding: slotBinding,
      ...(device.flush ? { flush: () => device.flush!() } : {}),
    }
    const layout = { bytes: device.expertBytes } as WeightSource['layout']
    this.#weights = { experts: this.experts, layout, read: (e: number) => device.read(e) } as WeightSource
  }

  /** The slot of `expert` on device 0, or -1 (core's contract). */
  deviceSlot(expert: number): number {
    return this.slotOf(expert)?.slot ?? -1
  }

  /** Where `expert` is resident, or null. */
  slotOf(expert: number): { readonly device: number; readonly slot: number } | null {
    checkExpert(expert, this.experts, 'slotOf')
    const device = this.split.deviceOf[expert]!
    const slot = this.#devices[device]!.cache.slotOf(expert)
    return slot < 0 ? null : { device, slot }
  }

  /** What a backend binds to compute a resident expert (its slot buffer on WebGPU), or null. */
  binding(expert: number): SlotBinding | null {
    const where = this.slotOf(expert)
    if (!where) return null
    const target = this.#devices[where.device]!.target
    return target ? target.binding(where.slot, expert, where.device) : { device: where.device, slot: where.slot, expert }
  }

  /** The residency target of `device` (created on first use), e.g. to read `buffers`. */
  target(device = 0): ResidencyTarget | null {
    return this.#devices[device]?.target ?? null
  }

  /**
   * Loads `experts` ahead of need on their devices (e.g. from the next layer's router or
   * cross-layer statistics) without evicting the experts of the last batch. Resolves when the
   * uploads are issued. Hits on them are reported as `prefetchHits`; prefetched experts evicted
   * unused as `prefetchWastedBytes`.
   */
  async prefetch(experts: readonly number[]): Promise<{ readonly loaded: readonly number[]; readonly bytes: number }> {
    this.#check()
    await this.#settle()
    return this.#prefetchNow(experts)
  }

  /** Resolves when the background prefetch (if any) has finished; rethrows its error. */
  async idle(): Promise<void> {
    await this.#settle()
  }

  /** Waits for background prefetches, then releases slots and weights. Further calls throw STORE_DISPOSED. */
  async dispose(): Promise<void> {
    if (this.#disposed) return
    await this.#background.catch(() => {})
    this.#disposed = true
    for (const d of this.#devices) d.target?.dispose?.()
    await this.#weights?.close?.()
  }

  #check(): void {
    if (this.#disposed) throw storeError(StoreErrorCodes.STORE_DISPOSED, `store '${this.name}' was disposed`)
  }

  async #settle(): Promise<void> {
    await this.#background
    if (this.#backgroundError !== null) {
      const e = this.#backgroundError
      this.#backgroundError = null
      throw e
    }
  }

  async #source(): Promise<WeightSource | null> {
    if (this.#weights) return this.#weights
    const w = this.#options.weights
    if (typeof w !== 'function') return null
    this.#weightsPromise ??= w()
    this.#weights = await this.#weightsPromise
    if (this.#weights.experts !== this.experts) {
      throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `weight source has ${this.#weights.experts} experts, the store ${this.experts}`)
    }
    return this.#weights
  }

  #targetOf(d: number): ResidencyTarget {
    const dev = this.#devices[d]!
    if (!dev.target) {
      const slots = dev.cache.slots
      const make = this.#options.target ?? ((_d: number, s: number, bytes: number) => hostTarget({ slots: s, slotBytes: bytes }))
      dev.target = make(d, slots, this.expertBytes)
    }
    return dev.target
  }

  async #readAll(experts: Iterable<number>, source: WeightSource | null): Promise<Map<number, Uint8Array>> {
    const out = new Map<number, Uint8Array>()
    if (!source) return out
    for (const e of experts) {
      if (out.has(e)) continue
      let bytes: Uint8Array
      try {
        bytes = await source.read(e)
      } catch (cause) {
        const inner = isMoeError(cause) ? `${cause.code}: ${cause.message}` : (cause as Error)?.message
        throw storeError(StoreErrorCodes.STORE_LOAD_FAILED, `loading expert ${e} failed, resident experts unchanged: ${inner}`, { expert: e, ...(isMoeError(cause) ? { causeCode: cause.code } : {}) }, cause)
      }
      if (bytes.byteLength !== source.layout.bytes) {
        throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `expert ${e}: weight source returned ${bytes.byteLength} bytes, layout needs ${source.layout.bytes}`, { expert: e })
      }
      out.set(e, bytes)
    }
    return out
  }

  async #run(request: StoreRequest, compute?: ExpertCompute): Promise<ExpertBufferTelemetry> {
    this.#check()
    await this.#settle()
    const started = performance.now()
    const byDevice = activeByDevice(request.active, this.split, `batch ${request.batchId}`)
    if (request.device !== undefined) {
      if (!Number.isInteger(request.device) || request.device < 0 || request.device >= this.split.devices) {
        throw storeError(StoreErrorCodes.STORE_EXPERT_UNKNOWN, `request.device ${String(request.device)} is not in 0 … ${this.split.devices - 1}`, { path: 'device' })
      }
      byDevice.forEach((l, d) => d !== request.device && (l.length = 0))
    }
    const bypass = this.#options.bypassLargeBatches ?? true
    // 1. Plan every device on a copy of its state.
    const plans = byDevice.map((active, d) => {
      if (active.length === 0) return null
      const cache = this.#devices[d]!.cache.clone()
      return { d, active, cache, result: cache.access(active, { protectActive: true, bypass }) }
    })
    // 2. Read every byte the plan needs before touching any slot.
    const source = await this.#source()
    const need = plans.flatMap((p) => (p ? p.result.steps.filter((s) => s.kind === 'load' || (s.kind === 'stream' && compute)).map((s) => s.expert) : []))
    const bytes = await this.#readAll(need, source)
    // 3. Write slots, adopt the plans, run compute.
    let hits = 0
    let misses = 0
    let evictions = 0
    let uploaded = 0
    let bypassed = false
    let prefetchHits = 0
    let wasted = 0
    const loaded: number[] = []
    const evicted: number[] = []
    const streamed: number[] = []
    for (const p of plans) {
      if (!p) continue
      const dev = this.#devices[p.d]!
      const target = this.#targetOf(p.d)
      const touched: CacheStep[] = []
      try {
        for (const step of p.result.steps) {
          if (step.kind === 'load') {
            await target.upload(step.slot, step.expert, bytes.get(step.expert) ?? EMPTY)
            touched.push(step)
            uploaded += this.expertBytes
            loaded.push(step.expert)
            if (step.evicted >= 0) evicted.push(step.evicted)
          } else if (step.kind === 'stream') {
            streamed.push(step.expert)
            // a streamed expert travels to the device too: by execute() here, or by the backend
            // after prepare() (a bypassed batch's misses are never free)
            uploaded += this.expertBytes
            if (compute) await target.stream?.(step.expert, bytes.get(step.expert) ?? EMPTY)
          }
          if (compute) await compute(step.expert, target.binding(step.kind === 'stream' ? -1 : step.slot, step.expert, p.d))
        }
      } catch (e) {
        // Slots already written hold their new experts: record exactly that, nothing stale.
        dev.cache = reconcile(dev.cache, touched)
        throw e
      }
      dev.cache = p.cache
      dev.lastActive = new Set(p.active)
      hits += p.result.hits
      misses += p.result.misses
      evictions += p.result.evictions
      bypassed ||= p.result.bypassed
      prefetchHits += p.result.prefetchHits
      wasted += p.result.prefetchWasted
    }
    if (this.#options.awaitUploads) await Promise.all(this.#devices.map(async (d) => d.target?.flush?.()))
    const uploadMs = performance.now() - started
    wasted += this.#wastedSinceLast
    this.#wastedSinceLast = 0
    const resident = this.#devices.reduce((a, d) => a + d.cache.resident().length, 0)
    const telemetry: ExpertBufferTelemetry = {
      hits,
      misses,
      evictions,
      bytesUploaded: uploaded,
      uploadMs,
      resident,
      residentBytes: resident * this.expertBytes,
      bypassed,
      prefetchHits,
      prefetchWastedBytes: wasted * this.expertBytes,
      loaded,
      evicted,
      streamed,
    }
    const predict = this.#options.prefetch
    if (predict) {
      const experts = predict(request, this)
      if (experts.length > 0) {
        this.#background = this.#prefetchNow(experts).then(
          () => {},
          (e: unknown) => {
            this.#backgroundError = e
          },
        )
      }
    }
    return telemetry
  }

  async #prefetchNow(experts: readonly number[]): Promise<{ loaded: number[]; bytes: number }> {
    const byDevice = activeByDevice([...new Set(experts)], this.split, 'prefetch')
    const plans = byDevice.map((list, d) => {
      if (list.length === 0) return null
      const ordered = experts.filter((e, i) => this.split.deviceOf[e] === d && experts.indexOf(e) === i)
      const cache = this.#devices[d]!.cache.clone()
      return { d, cache, result: cache.prefetch(ordered, this.#devices[d]!.lastActive) }
    })
    const source = await this.#source()
    const bytes = await this.#readAll(plans.flatMap((p) => (p ? p.result.steps.map((s) => s.expert) : [])), source)
    const loaded: number[] = []
    for (const p of plans) {
      if (!p) continue
      const dev = this.#devices[p.d]!
      const target = this.#targetOf(p.d)
      const touched: CacheStep[] = []
      try {
        for (const step of p.result.steps) {
          await target.upload(step.slot, step.expert, bytes.get(step.expert) ?? EMPTY)
          touched.push(step)
          loaded.push(step.expert)
        }
      } catch (e) {
        dev.cache = reconcile(dev.cache, touched)
        throw e
      }
      dev.cache = p.cache
      this.#wastedSinceLast += p.result.wasted
    }
    return { loaded, bytes: loaded.length * this.expertBytes }
  }
}

const EMPTY = new Uint8Array(0)

/** After a failed upload: the old state minus every slot that was overwritten. */
function reconcile(old: ExpertCache, touched: readonly CacheStep[]): ExpertCache {
  const c = old.clone()
  for (const s of touched) c.dropSlot(s.slot)
  return c
}

/**
 * A {@link NextBatchPredictor} for decode: the `count` experts most often active so far that
 * are not resident now (each device's slots permitting).
 */
export function historyPredictor(count: number): NextBatchPredictor {
  const seen = new Map<number, number>()
  return (request, store) => {
    for (const e of request.active) seen.set(e, (seen.get(e) ?? 0) + 1)
    return [...seen.entries()]
      .filter(([e]) => store.slotOf(e) === null)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, count)
      .map(([e]) => e)
  }
}
