/**
 * The configured MoE layer as one device pipeline: gate → router → policy stack → dispatcher
 * → (expert store) → grouped experts → combine → telemetry, encoded into one submission per
 * batch. Every stage whose plugin has a GPU lowering runs it; a stage without one runs its
 * host hook in a round trip (routing read back once, result uploaded once), counted in the
 * batch's telemetry. Only the telemetry counts (a few hundred bytes) come back unless the
 * caller asks for the output or the full routing detail.
 */
import {
  ErrorCodes,
  MoeError,
  STAGE_STAT_WORDS,
  StageStats,
  callPlugin,
  createRouting,
  isDeviceStage,
  mixSeed,
  mulberry32,
  pluginError,
  type DevicePipeline,
  type DeviceStage,
  type DeviceTensor,
  type DispatchPlan,
  type Dispatcher,
  type DroppedPair,
  type ForwardOptions,
  type GroupingStage,
  type LoweringContext,
  type PipelineResult,
  type PipelineSpec,
  type PipelineStageInfo,
  type PolicyOutcome,
  type PolicyTelemetry,
  type ReroutedPair,
  type Router,
  type RoutingPolicy,
  type Routing,
  type StageBatch,
  type StageTiming,
  type StoreTelemetry,
  type TelemetryCounts,
  type TokenBatch,
  type WgslStage,
} from '@moe-route/core'
import { sameWords, type GpuContext } from '../gpu/context.js'
import { grid1d } from '../gpu/program.js'
import { BufferUsage, STORAGE_RW } from '../gpu/constants.js'
import { offsetsProgram } from '../kernels/dispatch/dispatch.program.js'
import { GEMM_BM, GEMM_BN } from '../kernels/expert-ffn/expert-ffn.program.js'
import { int8TileDims } from '../kernels/expert-int8/int8.program.js'
import { initWeightsProgram } from '../kernels/init-weights/init-weights.program.js'
import { isDeviceInt8Weights, type DeviceInt8Weights } from '../weights-int8.js'
import type { DeviceLayerWeights } from '../weights.js'
import { gemmGridRows, withActiveList, type ExpertKernelUsed, type WebGpuMoeLayer } from '../layer.js'
import { groupCountProgram, groupFusedApplies, groupFusedProgram, GROUP_FUSED_MAX_PAIRS, groupScatterProgram, groupSelectProgram, groupSelectScratchWords, groupWriteProgram, normGroups, placementWords, telemetryPartialsProgram, telemetryPartWords, telemetryProgram, type GroupFusedParams, type TelemetryParams, fusedTelemetry, telemetryFusedProgram } from './grouping.program.js'
import { NO_PAIR, teleWords } from './grouping.wgsl.js'
import { compileStage, type CompiledPass, type StageRole } from './stage-program.js'

/** A stage of the pipeline as built: lowered (device) or a host hook. */
type Built =
  | { readonly role: StageRole; readonly name: string; readonly where: 'device'; readonly stage: WgslStage; readonly passes: CompiledPass[]; readonly slotsOut: number; readonly seedIndex: number }
  | { readonly role: 'router'; readonly name: string; readonly where: 'host'; readonly router: Router; readonly slotsOut: number }
  | { readonly role: 'policy'; readonly name: string; readonly where: 'host'; readonly policy: RoutingPolicy; readonly slotsOut: number; readonly seedIndex: number }

/** The dispatcher as built. */
type BuiltDispatch = { readonly name: string; readonly where: 'device'; readonly grouping: GroupingStage } | { readonly name: string; readonly where: 'host'; readonly dispatcher: Dispatcher }

/** A stage's output as read back for the full detail, with its per-slot drop reasons (stages with `dropReasons`). */
interface StageOutput {
  readonly ids: Int32Array
  readonly w: Float32Array
  readonly slots: number
  reasons: Uint32Array | null
}

/** Routing buffers on the device: ids and weights (T × slots). */
interface DeviceRouting {
  readonly ids: GPUBuffer
  readonly w: GPUBuffer
  readonly slots: number
}

/** A stage's uniform buffer (16 words), the words the next batch writes, and the words last written (null: none yet). */
interface StageUniform {
  readonly buffer: GPUBuffer
  readonly next: Uint32Array
  written: Uint32Array | null
}

const NO_PARAMS: readonly number[] = []

/** What `submit` asks of `run` (nothing is read back). */
const SUBMIT_OPTIONS: ForwardOptions = { detail: 'telemetry', output: 'norm' }

/** Internal marker of a DeviceTensor this backend made with the zero row the padded groups read. */
const PADDED_ROW = Symbol.for('@moe-route/backend-webgpu:padded-row')

/** Options of a WebGPU pipeline. */
export interface WebGpuPipelineOptions {
  /** Expert kernel (`auto` picks GEMV or GEMM by group size; `int8` needs int8 weights). */
  readonly expertKernel?: 'auto' | 'gemv' | 'gemm' | 'int8'
  /**
   * The weights hold this many expert slots of the spec's expert store (attached with
   * `store.attachDevice`), not every expert: the kernels read the store's slots.
   */
  readonly storeSlots?: number
  /** Destroy the weights with the pipeline (they were made for it). */
  readonly ownsWeights?: boolean
  /**
   * Device-lowered dispatchers group batches of at most this many (token, slot) pairs with the
   * one-workgroup fused kernel (`group-fused`), larger ones with the separate grouping kernels:
   * an integer 0 … {@link GROUP_FUSED_MAX_PAIRS} (default `GROUP_FUSED_DEFAULT_PAIRS`, 256); 0 never fuses (a tuning knob).
   */
  readonly groupFusedMaxPairs?: number
}

/**
 * Builds the device pipeline of a configured layer on `layer`'s device with weights `dw`.
 * Compiles every stage (async, in parallel) before returning.
 */
export async function createWebGpuPipeline(layer: WebGpuMoeLayer, dw: DeviceLayerWeights | DeviceInt8Weights, spec: PipelineSpec, options: WebGpuPipelineOptions = {}): Promise<WebGpuPipeline> {
  const p = new WebGpuPipeline(layer, dw, spec, options)
  await p.compile()
  return p
}

/** See {@link createWebGpuPipeline}. */
export class WebGpuPipeline implements DevicePipeline {
  readonly stages: PipelineStageInfo[] = []
  private readonly built: Built[] = []
  private dispatch!: BuiltDispatch
  private readonly ctx: GpuContext
  /** Placement and stage tables, the constant head of the aux buffer. */
  private auxHead = new Uint32Array(0)
  private readonly tableBase: number[] = []
  /** The dispatcher's stage name (`dispatch:<name>`), and each device stage's name and pass names (kernel-time keys when profiling), made once. */
  private dispatchStage = ''
  private readonly stageNames: string[] = []
  private readonly passNames: string[][] = []
  /** Most slots any stage writes. */
  private maxSlotsOut = 0
  private readonly E: number
  private readonly k: number
  private readonly H: number
  private disposed = false

  constructor(
    readonly layer: WebGpuMoeLayer,
    readonly weights: DeviceLayerWeights | DeviceInt8Weights,
    readonly spec: PipelineSpec,
    readonly options: WebGpuPipelineOptions = {},
  ) {
    this.ctx = layer.ctx
    this.E = spec.model.experts
    this.k = spec.model.topK
    this.H = spec.model.hidden
    const slots = options.storeSlots ?? this.E
    const fm = options.groupFusedMaxPairs
    if (fm !== undefined && !(Number.isInteger(fm) && fm >= 0 && fm <= GROUP_FUSED_MAX_PAIRS)) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `groupFusedMaxPairs must be an integer from 0 to ${GROUP_FUSED_MAX_PAIRS}, got ${String(fm)}`, { plugin: 'webgpu' })
    }
    if (options.storeSlots !== undefined && (!spec.store || typeof spec.store.deviceSlot !== 'function')) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, 'storeSlots needs an expert store with deviceSlot()', { plugin: 'webgpu' })
    }
    if (weights.shape.experts !== slots || weights.shape.hidden !== this.H || weights.shape.intermediate !== spec.model.intermediate) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `device weights are E=${weights.shape.experts} H=${weights.shape.hidden} I=${weights.shape.intermediate}, the model is E=${this.E} H=${this.H} I=${spec.model.intermediate}`)
    }
  }

  /** Lowers and compiles every stage. */
  async compile(): Promise<void> {
    const { spec, ctx } = this
    const f = ctx.features
    const L = ctx.device.limits
    const base: Omit<LoweringContext, 'slotsIn'> = {
      model: spec.model,
      devices: spec.placement.devices,
      placement: spec.placement,
      subgroups: f.subgroups,
      subgroupSize: f.subgroupSize,
      maxWorkgroupSize: Math.min(L.maxComputeInvocationsPerWorkgroup, L.maxComputeWorkgroupSizeX),
    }
    const tables: Uint32Array[] = []
    const lowerOf = (name: string, fn: (() => DeviceStage | null) | undefined): DeviceStage | null => {
      if (!fn) return null
      const s = callPlugin(name, 'lower', fn)
      if (s !== null && s !== undefined && !isDeviceStage(s)) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${name}.lower() returned something that is not a device stage`, { plugin: name, hook: 'lower' })
      return s ?? null
    }
    // router
    const r = spec.router
    const rs = lowerOf(r.name, r.lower ? () => r.lower!({ ...base, slotsIn: 0 }) : undefined)
    const compiles: Promise<void>[] = []
    const addDevice = (role: StageRole, name: string, stage: DeviceStage | null, slotsIn: number, seedIndex: number): boolean => {
      if (!stage) return false
      if (stage.kind !== 'wgsl') throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${name}: a ${role} lowers to a WGSL stage, not '${stage.kind}'`, { plugin: name, hook: 'lower' })
      if (stage.enable?.includes('subgroups') && !f.subgroups) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${name}: its lowering needs subgroups, which this device lacks`, { plugin: name, hook: 'lower' })
      const slotsOut = role === 'router' ? this.k : (stage.slotsOut ?? slotsIn)
      if (!Number.isInteger(slotsOut) || slotsOut < 1) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${name}: lowering has slotsOut ${slotsOut}`, { plugin: name, hook: 'lower' })
      const entry = { role, name, where: 'device' as const, stage, passes: [] as CompiledPass[], slotsOut, seedIndex }
      this.built.push(entry)
      this.tableBase.push(-1)
      if (stage.table) {
        this.tableBase[this.tableBase.length - 1] = tables.reduce((a, t) => a + t.length, 0)
        tables.push(stage.table)
      }
      compiles.push(compileStage(ctx.device, stage, role, name).then((c) => void entry.passes.push(...c)))
      return true
    }
    if (!addDevice('router', r.name, rs, 0, -1)) {
      this.built.push({ role: 'router', name: r.name, where: 'host', router: r, slotsOut: this.k })
      this.tableBase.push(-1)
    }
    this.stages.push({ stage: `router:${r.name}`, where: this.built[0].where })
    let slots = this.k
    spec.policies.forEach((policy, i) => {
      const st = lowerOf(policy.name, policy.lower ? () => policy.lower!({ ...base, slotsIn: slots }) : undefined)
      if (!addDevice('policy', policy.name, st, slots, i)) {
        // a host policy may widen the routing: later stages see up to E slots
        slots = Math.max(slots, this.E)
        this.built.push({ role: 'policy', name: policy.name, where: 'host', policy, slotsOut: slots, seedIndex: i })
        this.tableBase.push(-1)
      } else {
        slots = this.built[this.built.length - 1].slotsOut
      }
      this.stages.push({ stage: `policy:${policy.name}`, where: this.built[this.built.length - 1].where })
    })
    const d = spec.dispatcher
    const ds = lowerOf(d.name, d.lower ? () => d.lower!({ ...base, slotsIn: slots }) : undefined)
    if (ds && ds.kind !== 'grouping') throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${d.name}: a dispatcher lowers to a grouping stage, not '${ds.kind}'`, { plugin: d.name, hook: 'lower' })
    this.dispatch = ds ? { name: d.name, where: 'device', grouping: ds } : { name: d.name, where: 'host', dispatcher: d }
    this.dispatchStage = `dispatch:${d.name}`
    this.stages.push({ stage: this.dispatchStage, where: this.dispatch.where })
    if (spec.store) this.stages.push({ stage: `store:${spec.store.name}`, where: 'host' })
    if (this.options.storeSlots !== undefined && isDeviceInt8Weights(this.weights)) {
      throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'an expert store on the device pipeline needs f16 or f32 weights (the int8 kernels read every expert)', { plugin: 'webgpu', path: '/store' })
    }
    this.stages.push({ stage: 'experts', where: 'device' })
    // aux head: placement (E+1 absolute offsets, then replica lists), then the stage tables
    const place = placementWords(spec.placement.replicas)
    const tableWords = tables.reduce((a, t) => a + t.length, 0)
    const head = new Uint32Array(place.length + tableWords)
    head.set(place)
    let o = place.length
    const tablesAt = o
    for (const t of tables) {
      head.set(t, o)
      o += t.length
    }
    this.tableBase.forEach((b, i) => (this.tableBase[i] = b < 0 ? 0 : tablesAt + b))
    this.auxHead = head
    for (const b of this.built) {
      this.stageNames.push(`${b.role}:${b.name}`)
      this.passNames.push(b.where === 'device' ? b.stage.passes.map((pass) => `${b.name}:${pass.entryPoint}`) : [])
      this.maxSlotsOut = Math.max(this.maxSlotsOut, b.slotsOut)
    }
    await Promise.all(compiles)
  }

  /** Runs one batch and reads back its telemetry (and what `options` asks for). */
  async forward(batch: TokenBatch, options: ForwardOptions = {}): Promise<PipelineResult> {
    return (await this.run(batch, options, true))!
  }

  /**
   * Encodes and submits one batch without waiting and without reading anything back (the
   * output and telemetry stay on the device and are dropped): the same kernels as `forward`,
   * for timing calls back to back. Resolves once submitted; a pipeline with a host stage
   * still waits for its round trips.
   */
  async submit(batch: TokenBatch): Promise<void> {
    await this.run(batch, SUBMIT_OPTIONS, false)
  }

  private async run(batch: TokenBatch, options: ForwardOptions, readBack: boolean): Promise<PipelineResult | null> {
    if (this.disposed) throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'the pipeline was disposed')
    const { ctx, E, k, H, spec } = this
    const T = batch.tokens
    const D = spec.placement.devices
    const full = options.detail !== 'telemetry'
    const outputMode = options.output ?? 'host'
    const stats = this.built.length + 1 // + dispatcher
    const statWords = stats * STAGE_STAT_WORDS
    const teleBase = statWords
    const normBase = teleBase + teleWords(E)
    const readWords = normBase
    let sourceTokens: number[] | null = null
    if (batch.sourceDevice) {
      sourceTokens = new Array<number>(D).fill(0)
      for (const d of batch.sourceDevice) sourceTokens[d]++
    }
    const batchInfo = (i: number): StageBatch => ({ tokens: T, batchId: batch.id, decode: batch.decode === true, sourceTokens, seed: i < 0 ? 0 : mixSeed(spec.seed, batch.id, i) })
    // counters: stats, telemetry, norm partials, the telemetry kernel's partials (room for
    // the widest routing any stage writes: the final one is among them), then each device
    // stage's own words
    const partBase = normBase + 256
    const nb = this.built.length
    const counterBase = new Array<number>(nb)
    // each device stage's batch info, made once per batch (counter words, scratch, uniforms and passes read it)
    const infos = new Array<StageBatch | null>(nb)
    let cw = partBase + telemetryPartWords(T, k, this.maxSlotsOut)
    for (let si = 0; si < nb; si++) {
      const b = this.built[si]
      counterBase[si] = cw
      infos[si] = null
      if (b.where !== 'device') continue
      const info = (infos[si] = batchInfo(b.role === 'router' ? -1 : b.seedIndex))
      if (b.stage.counterWords) cw += Math.max(0, Math.ceil(b.stage.counterWords(info) ?? 0))
    }
    const transient: GPUBuffer[] = []
    const buf = (bytes: number, label: string, extra = 0) => {
      const b = ctx.storage(Math.max(16, bytes), label, extra)
      transient.push(b)
      return b
    }
    const counters = buf(cw * 4, 'counters')
    const srcBase = this.auxHead.length
    const aux = this.auxFor(batch, transient)
    const x = this.inputBuffer(batch, transient)
    let rec = ctx.recorder('moe-route pipeline', { profile: readBack })
    rec.clearFirst(counters, cw * 4)
    const kernels: Record<string, number> = {}
    const hostStages: StageTiming[] = []
    const hostRoundTrips: Record<string, number> = {}
    const hostPolicies = new Map<number, PolicyOutcome>()
    let hostOriginal: Routing | null = null
    /** Submits what is recorded, waits for `reads`, starts a new recorder. */
    const flush = async (reads: { src: GPUBuffer; bytes: number }[]): Promise<ArrayBuffer[]> => {
      for (const r of reads) rec.read(r.src, r.bytes)
      const res = await rec.submit()
      if (res.kernels) for (const [n, ms] of Object.entries(res.kernels)) kernels[n] = (kernels[n] ?? 0) + ms
      rec = ctx.recorder('moe-route pipeline', { profile: readBack })
      return res.reads
    }
    // each device stage's scratch, zeroed ahead of the first kernel (clears between kernels would
    // split the compute pass); a stage that asks for none (a router) binds the pipeline's unused
    // one, with no clear and no pooled buffer
    const scratchBuf = new Array<GPUBuffer | null>(nb)
    const scratchWordsOf = new Array<number>(nb)
    for (let si = 0; si < nb; si++) {
      const b = this.built[si]
      scratchBuf[si] = null
      scratchWordsOf[si] = 0
      if (b.where !== 'device') continue
      const asked = b.stage.scratchWords ? Math.ceil(b.stage.scratchWords(infos[si]!) ?? 0) : 0
      if (!(asked > 0)) {
        scratchBuf[si] = this.noScratch ??= ctx.device.createBuffer({ label: 'moe-route pipeline unused scratch', size: 16, usage: STORAGE_RW })
        scratchWordsOf[si] = 4
        continue
      }
      const words = Math.max(4, asked)
      const buffer = buf(words * 4, 'scratch')
      rec.clearFirst(buffer, words * 4)
      scratchBuf[si] = buffer
      scratchWordsOf[si] = words
    }
    // gate (or the batch's own logits / scores)
    const scores = buf(T * E * 4, 'scores')
    let gateIn: GPUBuffer
    let inputScores = false
    if (batch.logits || batch.scores) {
      inputScores = !batch.logits
      gateIn = ctx.upload((batch.logits ?? batch.scores)!, 'gate-in', 16)
      transient.push(gateIn)
    } else {
      if (!x) throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id} has neither hidden states, logits nor scores`, { record: batch.id })
      gateIn = buf(T * E * 4, 'logits')
      rec.stage = 'gate'
      if (T > 0) rec.run(this.layer.gateKernel(T, E), { tokens: T, experts: E, hidden: H }, [x, this.weights.router, gateIn])
    }
    // router and policies
    let cur: DeviceRouting = { ids: buf(T * k * 4, 'ids'), w: buf(T * k * 4, 'weights'), slots: k }
    const original = cur
    const stageOutputs: DeviceRouting[] = []
    // per stage output: the scratch holding its per-slot drop reasons (stages with dropReasons), else null
    const stageReasons: ({ src: GPUBuffer; words: number } | null)[] = []
    for (let si = 0; si < this.built.length; si++) {
      const b = this.built[si]
      const statBase = si * STAGE_STAT_WORDS
      if (b.where === 'device') {
        const scratch = scratchBuf[si]!
        const scratchWords = scratchWordsOf[si]
        const info = infos[si]!
        const out: DeviceRouting = b.role === 'router' ? cur : { ids: buf(T * b.slotsOut * 4, 'ids'), w: buf(T * b.slotsOut * 4, 'weights'), slots: b.slotsOut }
        const u = this.stageUniforms(si, b.name)
        const dims = u.dims.next
        dims[0] = T
        dims[1] = E
        dims[2] = k
        dims[3] = b.role === 'router' ? 0 : cur.slots
        dims[4] = out.slots
        dims[5] = D
        dims[6] = batch.decode ? 1 : 0
        dims[7] = spec.model.normalizeTopK ? 1 : 0
        dims[8] = batch.id >>> 0
        dims[9] = info.seed >>> 0
        dims[10] = statBase
        dims[11] = counterBase[si]
        dims[12] = this.tableBase[si]
        dims[13] = srcBase
        dims[14] = inputScores ? 1 : 0
        dims[15] = 0
        const pv = b.stage.params?.(info) ?? NO_PARAMS
        if (pv.length > 16) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${b.name}: a stage has at most 16 parameter words, got ${pv.length}`, { plugin: b.name, hook: 'lower' })
        const params = u.params.next
        for (let i = 0; i < 16; i++) params[i] = i < pv.length ? pv[i] >>> 0 : 0
        const uDims = this.writeUniform(u.dims)
        const uParams = this.writeUniform(u.params)
        const bindings = b.role === 'router' ? [gateIn, aux, scores, out.ids, out.w, scratch, counters, uDims, uParams] : [cur.ids, cur.w, scores, aux, out.ids, out.w, scratch, counters, uDims, uParams]
        rec.stage = this.stageNames[si]
        const passes = b.stage.passes
        for (let pi = 0; pi < passes.length; pi++) {
          const pass = passes[pi]
          if (pass.when && !pass.when(info)) continue
          const n = Math.ceil(pass.workgroups(info))
          if (n <= 0) continue
          const { pipeline } = b.passes[pi]
          rec.dispatch(this.passNames[si][pi], pipeline, ctx.bindGroup(pipeline, b.name, bindings), grid1d(n))
        }
        const reasons = b.role !== 'router' && b.stage.dropReasons?.length ? { src: scratch, words: Math.min(scratchWords, T * cur.slots) } : null
        if (b.role !== 'router') cur = out
        if (full) {
          stageOutputs.push(cur)
          stageReasons.push(reasons)
        }
        continue
      }
      // a host round trip
      rec.stage = null
      const t0 = performance.now()
      hostRoundTrips[b.name] = (hostRoundTrips[b.name] ?? 0) + 1
      if (b.role === 'router') {
        const [lg] = await flush([{ src: gateIn, bytes: T * E * 4 }])
        const input = new Float32Array(lg)
        const routing = callPlugin(b.name, 'route', () =>
          b.router.route({ tokens: T, experts: E, ...(inputScores ? { scores: input } : { logits: input }), ...(batch.sourceDevice ? { sourceDevice: batch.sourceDevice } : {}), ...(batch.decode ? { decode: true } : {}) }),
        )
        this.uploadRouting(routing, cur, scores)
        hostOriginal = routing
        if (full) {
          stageOutputs.push(cur)
          stageReasons.push(null)
        }
      } else {
        const [ids, w, sc] = await flush([
          { src: cur.ids, bytes: T * cur.slots * 4 },
          { src: cur.w, bytes: T * cur.slots * 4 },
          { src: scores, bytes: T * E * 4 },
        ])
        const routing = this.hostRouting(batch, new Int32Array(ids), new Float32Array(w), new Float32Array(sc), cur.slots)
        const random = mulberry32(mixSeed(spec.seed, batch.id, b.seedIndex))
        const outcome = callPlugin(b.name, 'apply', () => b.policy.apply(routing, { placement: spec.placement, batchId: batch.id, random }))
        if (!outcome || !outcome.routing) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${b.name} returned no routing from apply`, { plugin: b.name, hook: 'apply' })
        if (outcome.routing.slots > b.slotsOut) {
          throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${b.name} returned ${outcome.routing.slots} slots per token, more than the ${b.slotsOut} a device pipeline allows after it (E)`, { plugin: b.name, hook: 'apply' })
        }
        hostPolicies.set(si, outcome)
        const out: DeviceRouting = { ids: buf(T * b.slotsOut * 4, 'ids'), w: buf(T * b.slotsOut * 4, 'weights'), slots: b.slotsOut }
        this.uploadRouting(outcome.routing, out, null)
        cur = out
        if (full) {
          stageOutputs.push(cur)
          stageReasons.push(null)
        }
      }
      hostStages.push({ stage: `${b.role}:${b.name}`, where: 'host', ms: performance.now() - t0 })
    }
    // dispatcher
    const S = cur.slots
    const offsets = buf((3 * E + 1) * 4, 'offsets')
    const counts = buf(E * 4, 'counts')
    const args = buf(32, 'gemm-args', BufferUsage.INDIRECT)
    const tokenRows = buf(T * S * 4, 'tokenRows')
    const dispatchStat = this.built.length * STAGE_STAT_WORDS
    let rowsBound: number
    let padded = false
    let capacity: number | null = null
    let hostPlan: DispatchPlan | null = null
    let hostMaxRows: number | null = null
    /** Rows crossing devices when a padded grouping ships whole segments (`padded-slots`), else null. */
    let slotRowsCrossing: number | null = null
    const rowsHint0 = Math.max(1, Math.min(T, Math.ceil((T * k) / E)))
    const kind = this.expertKernel(rowsHint0)
    const tile = kind === 'int8' ? int8TileDims(this.layer.int8Gemm(rowsHint0, H, spec.model.intermediate)) : { bm: GEMM_BM, bn: GEMM_BN }
    let rowToken: GPUBuffer
    let rowWeight: GPUBuffer
    if (this.dispatch.where === 'device') {
      const g = this.dispatch.grouping
      const info = batchInfo(-1)
      padded = g.padding === 'padded'
      const segments = padded && g.segments === 'per-source-device' && batch.sourceDevice ? D : 1
      const cap = padded ? Math.max(0, Math.floor(g.capacity?.(info, busiestSource(batch, D)) ?? 0)) : 0
      const width = padded ? segments * cap : T * S
      rowsBound = padded ? E * width : T * S
      capacity = padded ? width : null
      if (padded && g.traffic === 'padded-slots') {
        // every segment sends its cap slots of every expert to the expert's primary device
        slotRowsCrossing = 0
        for (let seg = 0; seg < segments; seg++) for (let e = 0; e < E; e++) if (spec.placement.replicas[e][0] !== seg) slotRowsCrossing += cap
      }
      rowToken = buf(rowsBound * 4, 'rowToken')
      rowWeight = buf(rowsBound * 4, 'rowWeight')
      rec.stage = this.dispatchStage
      // one object for the grouping kernels and the offsets' grid (no spreads: built every batch)
      const bnDown = (tile as { bnDown?: number }).bnDown ?? tile.bn
      const gs: GroupFusedParams = { tokens: T, slots: S, experts: E, padded, cap, segments, choice: g.priority === 'choice', srcBase, width, statBase: dispatchStat + StageStats.DROPPED, colsGateUp: spec.model.intermediate, colsDown: H, bm: tile.bm, bn: tile.bn, bnDown }
      if (groupFusedApplies(gs, ctx.device.limits, this.options.groupFusedMaxPairs)) {
        // small batches: the whole grouping in one workgroup (no kept, no clear)
        rec.run(groupFusedProgram(), gs, [cur.ids, aux, cur.w, counts, counters, offsets, args, rowToken, rowWeight, tokenRows])
      } else {
        const kept = buf(E * Math.max(1, width) * 4, 'kept')
        if (T > 0) {
          // one workgroup per expert while the batch is one chunk; past that, per (expert, chunk)
          const scratchWords = groupSelectScratchWords(gs)
          if (scratchWords === 0) rec.run(groupSelectProgram(), gs, [cur.ids, aux, kept, counts, counters])
          else {
            const groupScratch = buf(scratchWords * 4, 'group-scratch')
            rec.run(groupCountProgram(), gs, [cur.ids, aux, groupScratch])
            rec.run(groupWriteProgram(), gs, [cur.ids, aux, groupScratch, kept, counts, counters])
          }
        } else rec.clear(counts, E * 4)
        rec.run(offsetsProgram(), { experts: E, isStatic: padded, capacity: width, colsGateUp: spec.model.intermediate, colsDown: H, bm: tile.bm, bn: tile.bn, bnDown }, [counts, offsets, args])
        rec.clearFirst(tokenRows, T * S * 4)
        if (rowsBound > 0) rec.run(groupScatterProgram(), { slots: S, experts: E, width }, [cur.w, offsets, kept, rowToken, rowWeight, tokenRows])
      }
    } else {
      rec.stage = null
      const t0 = performance.now()
      hostRoundTrips[this.dispatch.name] = (hostRoundTrips[this.dispatch.name] ?? 0) + 1
      const [ids, w, sc] = await flush([
        { src: cur.ids, bytes: T * S * 4 },
        { src: cur.w, bytes: T * S * 4 },
        { src: scores, bytes: T * E * 4 },
      ])
      const routing = this.hostRouting(batch, new Int32Array(ids), new Float32Array(w), new Float32Array(sc), S)
      const d = this.dispatch.dispatcher
      const plan = callPlugin(d.name, 'dispatch', () => d.dispatch(routing, { placement: spec.placement, bytesPerToken: H * spec.activationBytes }))
      hostPlan = plan
      const rows = plan.offsets[E]
      rowsBound = rows
      padded = plan.paddingRows > 0 || plan.capacity !== null
      capacity = plan.capacity
      rowToken = buf(rows * 4, 'rowToken')
      rowWeight = buf(rows * 4, 'rowWeight')
      if (rows > 0) {
        ctx.device.queue.writeBuffer(rowToken, 0, plan.rowToken.buffer, plan.rowToken.byteOffset, rows * 4)
        ctx.device.queue.writeBuffer(rowWeight, 0, plan.rowWeight.buffer, plan.rowWeight.byteOffset, rows * 4)
      }
      ctx.device.queue.writeBuffer(offsets, 0, withActiveList(plan.offsets, E))
      ctx.device.queue.writeBuffer(counts, 0, plan.counts)
      ctx.device.queue.writeBuffer(tokenRows, 0, planTokenRows(plan, routing, d.name))
      let maxRows = 0
      for (let e = 0; e < E; e++) maxRows = Math.max(maxRows, plan.offsets[e + 1] - plan.offsets[e])
      hostMaxRows = maxRows
      const gy = Math.ceil(maxRows / tile.bm)
      const bnDown = (tile as { bnDown?: number }).bnDown ?? tile.bn
      ctx.device.queue.writeBuffer(args, 0, new Uint32Array([Math.ceil(spec.model.intermediate / tile.bn), gy, E, Math.ceil(H / bnDown), gy, E, rows, maxRows]))
      hostStages.push({ stage: `dispatch:${d.name}`, where: 'host', ms: performance.now() - t0 })
    }
    // expert store: the active experts must be resident before the experts run; with device
    // slots the kernels read them there (a batch with more active experts than slots runs as
    // a load–compute sweep, `slots` experts at a time)
    let store: StoreTelemetry | undefined
    const rowsHint = padded ? Math.max(1, capacity ?? 0) : rowsHint0
    // the GEMMs' row-tile grid: direct (Dawn validates indirect dispatches on the host) — the
    // largest group where the host knows it (a host plan, padded groups of exactly `capacity`
    // rows), else twice the typical group (the GEMMs loop over further row tiles); or the
    // indirect grid of the offsets kernel when the layer asks for it
    const directRows = hostMaxRows ?? (padded ? (capacity ?? 0) : this.layer.options.indirectGemmGrid ? null : gemmGridRows(rowsBound, rowsHint0))
    // one shape whichever grid (no conditional spread: built every batch); `indirect` set means the indirect grid
    const expertParams = { tokens: T, rowsBound, slots: S, kernel: kind, rowsHint, expertSlots: padded ? E : Math.min(E, T * S), maxRows: directRows ?? undefined, indirect: directRows === null ? args : undefined, experts: E }
    let out: GPUBuffer | null = null
    if (spec.store) {
      const st = spec.store
      const t0 = performance.now()
      const [cb, ob] = await flush([{ src: counts, bytes: E * 4 }, { src: offsets, bytes: (E + 1) * 4 }])
      const c = new Int32Array(cb)
      const active: number[] = []
      c.forEach((n, e) => n > 0 && active.push(e))
      const prepare = async (list: number[]) => {
        try {
          return await st.prepare({ batchId: batch.id, active: list, counts: c })
        } catch (cause) {
          throw pluginError(st.name, 'prepare', cause)
        }
      }
      const slotTable = () => Int32Array.from({ length: E }, (_, e) => Math.max(0, st.deviceSlot!(e)))
      const slotted = this.options.storeSlots !== undefined
      if (!slotted || active.length <= this.options.storeSlots!) {
        store = await prepare(active)
        if (slotted) {
          const missing = active.filter((e) => st.deviceSlot!(e) < 0)
          if (missing.length) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `store ${st.name} left experts ${missing.join(', ')} without a device slot`, { plugin: st.name, hook: 'prepare' })
          ctx.device.queue.writeBuffer(offsets, (2 * E + 1) * 4, slotTable())
        }
      } else if (x) {
        // the sweep: chunk by chunk, prepare then the decode kernels over that chunk's groups
        const y = buf(Math.max(1, rowsBound) * H * 4, 'expert-out')
        const offs = new Int32Array(ob)
        const sum: Record<string, number> = {}
        let last: StoreTelemetry | undefined
        for (let i = 0; i < active.length; i += this.options.storeSlots!) {
          const chunk = active.slice(i, i + this.options.storeSlots!)
          last = await prepare(chunk)
          for (const [k2, v] of Object.entries(last)) if (typeof v === 'number') sum[k2] = (sum[k2] ?? 0) + v
          const chunkOffsets = ctx.upload(withActiveList(offs, E, slotTable(), chunk), 'offsets')
          transient.push(chunkOffsets)
          rec.stage = 'experts'
          this.layer.encodeExpertRows(rec, this.weights as DeviceLayerWeights, { x, rowToken, offsets: chunkOffsets }, { ...expertParams, kernel: 'gemv', expertSlots: chunk.length, rowsHint: Math.max(1, Math.ceil(rowsBound / active.length)) }, y)
          await flush([])
        }
        store = { ...last!, ...sum, resident: last!.resident, bypassed: false } as StoreTelemetry
        out = this.layer.encodeCombine(rec, y, { rowWeight, tokenRows }, T, H, S)
      }
      hostStages.push({ stage: `store:${st.name}`, where: 'host', ms: performance.now() - t0 })
    }
    // experts and combine (a routing-only batch — logits or scores, no hidden states — stops after the dispatcher)
    rec.stage = 'experts'
    if (!out && x) out = this.layer.encodeExperts(rec, this.weights, { x, rowToken, rowWeight, offsets, tokenRows }, expertParams)
    // telemetry counts and the output norm, then one small readback
    rec.stage = 'telemetry'
    const n4 = out ? (T * H) / 4 : 0
    const tele: TelemetryParams & { readonly n4: number } = { tokens: T, k, slots: S, experts: E, srcBase, teleBase, partBase, normBase, normGroups: n4 > 0 ? normGroups(n4) : 0, devices: D, perPair: this.dispatch.where === 'device' && this.dispatch.grouping.traffic === 'per-pair', n4 }
    // a small batch runs both passes as one workgroup (the same block, bit for bit); else the
    // first pass (the pair partials and, in the same dispatch, the output norm's), then the second
    const fused = fusedTelemetry(tele, ctx.device.limits.maxStorageBuffersPerShaderStage)
    const norm = out !== null && n4 > 0
    const teleBindings = [original.ids, original.w, cur.ids, cur.w, tokenRows, aux]
    if (fused) teleBindings.push(counts)
    if (norm) teleBindings.push(out!)
    teleBindings.push(counters)
    rec.run(fused ? telemetryFusedProgram(norm) : telemetryPartialsProgram(norm), tele, teleBindings)
    if (!fused) rec.run(telemetryProgram(), tele, [counts, counters])
    rec.stage = null
    const reads: { src: GPUBuffer; bytes: number }[] = [{ src: counters, bytes: readWords * 4 }]
    const hostOut = outputMode === 'host' && out !== null
    if (hostOut) reads.push({ src: out!, bytes: T * H * 4 })
    if (full) {
      reads.push({ src: original.ids, bytes: T * k * 4 }, { src: original.w, bytes: T * k * 4 }, { src: scores, bytes: T * E * 4 }, { src: tokenRows, bytes: T * S * 4 })
      reads.push({ src: offsets, bytes: (E + 1) * 4 }, { src: counts, bytes: E * 4 }, { src: rowToken, bytes: rowsBound * 4 }, { src: rowWeight, bytes: rowsBound * 4 })
      for (const so of stageOutputs) reads.push({ src: so.ids, bytes: T * so.slots * 4 }, { src: so.w, bytes: T * so.slots * 4 })
      for (const r of stageReasons) if (r) reads.push({ src: r.src, bytes: Math.max(4, r.words * 4) })
    }
    if (out && (outputMode !== 'device' || !readBack)) transient.push(out)
    rec.releaseAfterSubmit(...transient)
    if (!readBack) {
      rec.submitNoWait()
      return null
    }
    const got = await flush(reads)
    const words = new Uint32Array(got[0])
    const floats = new Float32Array(got[0])
    const outputNorm = Math.sqrt(Math.max(0, floats[teleBase + 8]))
    const policies: PolicyTelemetry[] = []
    this.built.forEach((b, si) => {
      if (b.role === 'router') return
      const host = hostPolicies.get(si)
      if (host) {
        policies.push({
          policy: b.name,
          dropped: host.dropped.length,
          rerouted: host.rerouted?.length ?? 0,
          added: host.added?.length ?? 0,
          capacity: host.capacity ?? null,
          ...(host.skipped ? { skipped: host.skipped } : {}),
        })
        return
      }
      const s = si * STAGE_STAT_WORDS
      const skipped = words[s + StageStats.SKIPPED] !== 0
      policies.push({
        policy: b.name,
        dropped: words[s + StageStats.DROPPED],
        rerouted: words[s + StageStats.REROUTED],
        added: words[s + StageStats.ADDED],
        capacity: words[s + StageStats.HAS_CAPACITY] !== 0 ? words[s + StageStats.CAPACITY] : null,
        ...(skipped ? { skipped: (b.where === 'device' && b.stage.skippedReason) || 'skipped' } : {}),
      })
    })
    const tb = teleBase
    const counts2: TelemetryCounts = {
      tokens: T,
      pairsBefore: words[tb],
      pairsAfter: words[tb + 1],
      dropped: words[tb + 2],
      added: words[tb + 3],
      tokensFullyDropped: words[tb + 4],
      massBefore: floats[tb + 6],
      massKept: floats[tb + 7],
      loadBefore: Array.from(words.subarray(tb + 12, tb + 12 + E)),
      loadAfter: Array.from(words.subarray(tb + 12 + E, tb + 12 + 2 * E)),
      policies,
      dispatch: {
        mode: hostPlan ? hostPlan.mode : this.dispatch.where === 'device' ? this.dispatch.grouping.mode : 'dynamic',
        // exact groups compute their real rows only (rowsBound is the T·S bound)
        slotsComputed: hostPlan ? hostPlan.rowToken.length : padded ? rowsBound : sumCounts(words, tb + 12 + E, E),
        paddingRows: hostPlan ? hostPlan.paddingRows : padded ? rowsBound - sumCounts(words, tb + 12 + E, E) : 0,
        bytesCrossDevice: hostPlan ? hostPlan.traffic.bytesCrossDevice : (slotRowsCrossing ?? words[tb + 5]) * H * spec.activationBytes,
        capacity,
        // the dispatcher's own drops: pairs the policies left in the routing that got no row
        droppedPairs: hostPlan
          ? hostPlan.dropped.length
          : Math.max(0, words[tb] + policies.reduce((n, p) => n - p.dropped + p.added, 0) - words[tb + 1]),
      },
    }
    const stagesTiming = this.stageTimings(kernels, hostStages)
    let detail: PipelineResult['detail']
    if (full) {
      let i = hostOut ? 2 : 1
      const next = () => got[i++]
      const origIds = new Int32Array(next())
      const origW = new Float32Array(next())
      const sc = new Float32Array(next())
      const tr = new Uint32Array(next())
      const offs = new Int32Array(next())
      const cts = new Int32Array(next())
      const rt = new Int32Array(next())
      const rw = new Float32Array(next())
      const outs: StageOutput[] = stageOutputs.map((so) => ({ ids: new Int32Array(next()), w: new Float32Array(next()), slots: so.slots, reasons: null }))
      stageReasons.forEach((r, i) => r && (outs[i].reasons = new Uint32Array(next())))
      detail = this.detailOf(batch, hostOriginal ? hostOriginal : this.hostRouting(batch, origIds, origW, sc, k), sc, outs, tr, S, hostPlan ?? planOf(T, E, offs, cts, rt, rw, padded, capacity, this.dispatch.where === 'device' ? this.dispatch.grouping.mode : 'dynamic', counts2.dispatch.bytesCrossDevice, D), hostPolicies)
    }
    return {
      counts: counts2,
      ...(out ? { outputNorm } : {}),
      ...(hostOut ? { output: new Float32Array(got[1]) } : {}),
      ...(out && outputMode === 'device' ? { deviceOutput: deviceTensor(ctx, out, T, H) } : {}),
      ...(detail ? { detail } : {}),
      ...(store ? { store } : {}),
      hostRoundTrips,
      stages: stagesTiming,
      ...(Object.keys(kernels).length ? { kernels } : {}),
    }
  }

  /** The scratch binding of device stages that ask for no scratch words (never written by a stage that keeps the contract, so never cleared). */
  private noScratch: GPUBuffer | null = null

  /** Each device stage's dims and params uniform buffers (see {@link stageUniforms}), by stage index. */
  private readonly uniforms: ({ dims: StageUniform; params: StageUniform } | null)[] = []

  /**
   * The dims and params uniforms of device stage `si`: one buffer each for the pipeline's
   * lifetime, rewritten only when a batch's words differ from the last ones written (params
   * rarely change, dims with the batch id). Safe across batches in flight: queue writes are
   * ordered between submits, and every batch submits what it recorded after a write before it
   * awaits anything, so no other batch's write lands between a stage's write and its submit.
   */
  private stageUniforms(si: number, name: string): { dims: StageUniform; params: StageUniform } {
    let u = this.uniforms[si]
    if (!u) {
      const make = (what: string): StageUniform => ({
        buffer: this.ctx.device.createBuffer({ label: `moe-route ${name} ${what}`, size: 64, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST }),
        next: new Uint32Array(16),
        written: null,
      })
      u = this.uniforms[si] = { dims: make('dims'), params: make('params') }
    }
    return u
  }

  /** Writes `u.next` into its buffer unless it holds those words already; returns the buffer. */
  private writeUniform(u: StageUniform): GPUBuffer {
    const { next } = u
    if (u.written === null || !sameWords(u.written, next)) {
      this.ctx.device.queue.writeBuffer(u.buffer, 0, next)
      ;(u.written ??= new Uint32Array(16)).set(next)
    }
    return u.buffer
  }

  /** A persistent aux buffer (see {@link auxFor}), the tokens it has room for, and whether its source devices are zero. */
  private aux: { buffer: GPUBuffer; tokens: number; zeroSources: boolean } | null = null

  /**
   * The aux words of a batch (placement and tables, then the source device of each token).
   * A pipeline that submits each batch at once (no host stage, no store) keeps one buffer and
   * rewrites only the source devices when they change: the queue orders that write after every
   * earlier batch's submit. Otherwise each batch gets its own pooled copy.
   */
  private auxFor(batch: TokenBatch, transient: GPUBuffer[]): GPUBuffer {
    const { ctx } = this
    const T = batch.tokens
    const head = this.auxHead
    const words = head.length + Math.max(1, T)
    const single = !this.spec.store && this.built.every((b) => b.where === 'device') && this.dispatch.where === 'device'
    if (!single) {
      const b = ctx.storage(words * 4, 'aux')
      transient.push(b)
      const data = new Uint32Array(words)
      data.set(head)
      if (batch.sourceDevice) data.set(batch.sourceDevice, head.length)
      ctx.device.queue.writeBuffer(b, 0, data)
      return b
    }
    if (!this.aux || this.aux.tokens < T) {
      this.aux?.buffer.destroy()
      const tokens = Math.max(T, 2 * (this.aux?.tokens ?? 0), 64)
      const buffer = ctx.device.createBuffer({ label: 'moe-route pipeline aux', size: (head.length + tokens) * 4, usage: STORAGE_RW })
      const data = new Uint32Array(head.length + tokens)
      data.set(head)
      ctx.device.queue.writeBuffer(buffer, 0, data)
      this.aux = { buffer, tokens, zeroSources: true }
    }
    if (batch.sourceDevice) {
      ctx.device.queue.writeBuffer(this.aux.buffer, head.length * 4, batch.sourceDevice.buffer, batch.sourceDevice.byteOffset, T * 4)
      this.aux.zeroSources = false
    } else if (!this.aux.zeroSources) {
      ctx.device.queue.writeBuffer(this.aux.buffer, head.length * 4, new Uint32Array(this.aux.tokens))
      this.aux.zeroSources = true
    }
    return this.aux.buffer
  }

  /** The expert kernel of a batch whose mean group has `rows` rows. */
  private expertKernel(rows: number): ExpertKernelUsed {
    if (isDeviceInt8Weights(this.weights)) return 'int8'
    const k = this.options.expertKernel ?? this.layer.options.expertKernel ?? 'auto'
    if (k === 'int8') return 'int8'
    if (k !== 'auto') return k
    return this.layer.autoExpertKernel(rows)
  }

  /** Per-stage times: device kernel times (profiled) or null, host stages' wall times. */
  private stageTimings(kernels: Record<string, number>, host: StageTiming[]): StageTiming[] {
    const profiled = Object.keys(kernels).length > 0
    // a stage's time: its kernels' times (keys `<stage>|<kernel>`)
    const sum = (stage: string) => Object.entries(kernels).reduce((a, [k, ms]) => (k === stage || k.startsWith(`${stage}|`) ? a + ms : a), 0)
    const dev = (stage: string): StageTiming => ({ stage, where: 'device', ms: profiled ? sum(stage) : null })
    const out: StageTiming[] = []
    out.push(dev('gate'))
    for (const s of this.stages) {
      const h = host.find((x) => x.stage === s.stage)
      if (h) out.push(h)
      else if (s.where === 'device') out.push(dev(s.stage))
    }
    out.push(dev('telemetry'))
    return out
  }

  /** The batch's hidden states as a (T+1)×H device buffer (last row zero), or null without any. */
  private inputBuffer(batch: TokenBatch, transient: GPUBuffer[]): GPUBuffer | null {
    const { H, ctx } = this
    const T = batch.tokens
    if (batch.deviceHidden) {
      const t = batch.deviceHidden
      if (t.backend !== 'webgpu') throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id}: deviceHidden belongs to backend ${t.backend}, not webgpu`, { record: batch.id })
      if (t.rows !== T || t.columns !== H) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `batch ${batch.id}: deviceHidden is ${t.rows}×${t.columns}, expected ${T}×${H}`, { record: batch.id })
      const b = t.buffer as GPUBuffer
      if ((t as unknown as Record<symbol, unknown>)[PADDED_ROW] === true) return b
      const x = ctx.storage((T + 1) * H * 4, 'hidden')
      transient.push(x)
      const rec = ctx.recorder('hidden copy', { profile: false })
      this.ctx.device.queue.writeBuffer(x, T * H * 4, new Float32Array(H))
      rec.copy(b, 0, x, 0, T * H * 4)
      rec.submitNoWait()
      return x
    }
    if (!batch.hidden) return null
    const x = this.layer.uploadHidden(batch.hidden, T, H)
    transient.push(x)
    return x
  }

  /** Uploads a host routing into `dst` (padded to dst.slots), and its scores when `scores` is given. */
  private uploadRouting(routing: Routing, dst: DeviceRouting, scores: GPUBuffer | null): void {
    const T = routing.tokens
    const ids = new Int32Array(T * dst.slots).fill(-1)
    const w = new Float32Array(T * dst.slots)
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < routing.slots; j++) {
        ids[t * dst.slots + j] = routing.expertIds[t * routing.slots + j]
        w[t * dst.slots + j] = routing.weights[t * routing.slots + j]
      }
    }
    const q = this.ctx.device.queue
    if (T > 0) {
      q.writeBuffer(dst.ids, 0, ids)
      q.writeBuffer(dst.w, 0, w)
      if (scores) q.writeBuffer(scores, 0, routing.scores.buffer, routing.scores.byteOffset, routing.scores.byteLength)
    }
  }

  /** A host Routing from read-back device buffers. */
  private hostRouting(batch: TokenBatch, ids: Int32Array, w: Float32Array, scores: Float32Array, slots: number): Routing {
    return createRouting({
      tokens: batch.tokens,
      experts: this.E,
      topK: this.k,
      slots,
      expertIds: ids,
      weights: w,
      scores,
      normalizeTopK: this.spec.model.normalizeTopK,
      ...(batch.sourceDevice ? { sourceDevice: batch.sourceDevice } : {}),
      ...(batch.decode ? { decode: true } : {}),
    })
  }

  /**
   * The full detail of a batch from read-back buffers: dropped and moved pairs by comparing
   * each stage's output with its input (reason and policy of the stage that removed them),
   * the dispatcher's overflow from the pairs it did not compute.
   */
  private detailOf(
    batch: TokenBatch,
    original: Routing,
    scores: Float32Array,
    outs: StageOutput[],
    tokenRows: Uint32Array,
    S: number,
    plan: DispatchPlan,
    hostPolicies: Map<number, PolicyOutcome>,
  ): NonNullable<PipelineResult['detail']> {
    const T = batch.tokens
    const dropped: DroppedPair[] = []
    const rerouted: ReroutedPair[] = []
    let prev = { ids: original.expertIds, w: original.weights, slots: original.slots }
    let oi = 0
    this.built.forEach((b, si) => {
      const o = outs[oi++]
      if (b.role === 'router') {
        prev = o
        return
      }
      const host = hostPolicies.get(si)
      if (host) {
        dropped.push(...host.dropped)
        if (host.rerouted) rerouted.push(...host.rerouted)
        prev = o
        return
      }
      const reason = (b.where === 'device' && b.stage.dropReason) || 'capacity'
      const more = b.where === 'device' ? (b.stage.dropReasons ?? []) : []
      const reasonOf = (t: number, j: number) => (o.reasons && o.reasons[t * prev.slots + j] > 0 ? (more[o.reasons[t * prev.slots + j] - 1] ?? reason) : reason)
      const moves = b.where === 'device' ? (b.stage.moves ?? false) : false
      const from = dropped.length
      for (let t = 0; t < T; t++) {
        const before = pairsOfToken(prev, t)
        const after = pairsOfToken(o, t)
        const removed = before.filter((p) => !after.some((q) => q.e === p.e))
        const addedHere = after.filter((q) => !before.some((p) => p.e === q.e))
        if (moves === 'by-score') {
          // substitution: the i-th removed expert (by score) moved to the i-th added one
          const byScore = (x: { e: number }, y: { e: number }) => scores[t * this.E + y.e] - scores[t * this.E + x.e] || x.e - y.e
          removed.sort(byScore)
          addedHere.sort(byScore)
          removed.forEach((p, i) => {
            if (i < addedHere.length) rerouted.push({ token: t, from: p.e, to: addedHere[i].e, weight: p.w, policy: b.name })
            else dropped.push({ token: t, expert: p.e, weight: p.w, reason: reasonOf(t, p.j), policy: b.name })
          })
          continue
        }
        // a removed pair whose weight reappears on an added expert was moved
        for (const p of removed) {
          const m = addedHere.findIndex((q) => q.w === p.w)
          if (m >= 0 && moves === true) {
            rerouted.push({ token: t, from: p.e, to: addedHere[m].e, weight: p.w, policy: b.name })
            addedHere.splice(m, 1)
          } else dropped.push({ token: t, expert: p.e, weight: p.w, reason: reasonOf(t, p.j), policy: b.name })
        }
      }
      // each stage's pairs in (token, expert) order, stages in pipeline order (as the host engine lists them)
      dropped.splice(from, dropped.length - from, ...dropped.slice(from).sort(byPair))
      prev = o
    })
    const finalIds = prev.ids
    const finalW = prev.w
    const dReason = this.dispatch.where === 'device' ? (this.dispatch.grouping.dropReason ?? 'static-overflow') : 'static-overflow'
    if (this.dispatch.where === 'device') {
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < S; j++) {
          const e = finalIds[t * S + j]
          if (e >= 0 && tokenRows[t * S + j] === 0) dropped.push({ token: t, expert: e, weight: finalW[t * S + j], reason: dReason, policy: this.dispatch.name })
        }
      }
    } else {
      dropped.push(...plan.dropped)
    }
    const routing = this.hostRouting(batch, Int32Array.from(finalIds), Float32Array.from(finalW), scores, S)
    return { original, routing, plan, dropped, rerouted }
  }

  /** Frees what the pipeline owns on the device: its weights (when given ownership) and its aux buffer. */
  async dispose(): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    this.aux?.buffer.destroy()
    this.aux = null
    for (const u of this.uniforms) {
      u?.dims.buffer.destroy()
      u?.params.buffer.destroy()
    }
    this.uniforms.length = 0
    this.noScratch?.destroy()
    this.noScratch = null
    if (this.options.ownsWeights) this.weights.destroy()
  }
}

/** A DeviceTensor over `b` (rows×columns f32) that gives the buffer back to the pool on release. */
export function deviceTensor(ctx: GpuContext, b: GPUBuffer, rows: number, columns: number, paddedRow = false): DeviceTensor {
  let released = false
  const t: DeviceTensor = {
    backend: 'webgpu',
    buffer: b,
    rows,
    columns,
    release: () => {
      if (released) return
      released = true
      ctx.pool.release(b)
    },
  }
  if (paddedRow) Object.defineProperty(t, PADDED_ROW, { value: true })
  return t
}

/**
 * Synthetic hidden states made on the device: normal(0, 1) values of core's counter-based
 * `seededNormals(…, seed, 1)` (f32 rounding aside), plus the zero row the kernels read.
 */
export function syntheticHidden(ctx: GpuContext, tokens: number, hidden: number, seed: number): DeviceTensor {
  const x = ctx.storage((tokens + 1) * hidden * 4, 'hidden')
  const rec = ctx.recorder('synthetic hidden', { profile: false })
  rec.clear(x, (tokens + 1) * hidden * 4)
  if (tokens > 0) rec.run(initWeightsProgram('f32'), { count: tokens * hidden, seed: seed >>> 0, std: 1 }, [x])
  rec.submitNoWait()
  return deviceTensor(ctx, x, tokens, hidden, true)
}

const byPair = (a: { token: number; expert: number }, b: { token: number; expert: number }) => a.token - b.token || a.expert - b.expert

/** Pairs of token t of a slot layout. */
function pairsOfToken(r: { ids: ArrayLike<number>; w: ArrayLike<number>; slots: number }, t: number): { e: number; w: number; j: number }[] {
  const out: { e: number; w: number; j: number }[] = []
  for (let j = 0; j < r.slots; j++) {
    const e = r.ids[t * r.slots + j]
    if (e >= 0) out.push({ e, w: r.w[t * r.slots + j], j })
  }
  return out
}

/** Tokens of the busiest source device (the batch's tokens without source devices). */
function busiestSource(batch: TokenBatch, devices: number): number {
  if (!batch.sourceDevice) return batch.tokens
  const n = new Int32Array(Math.max(1, devices))
  for (const d of batch.sourceDevice) n[d]++
  return Math.max(...n)
}

function sumCounts(words: Uint32Array, at: number, n: number): number {
  let s = 0
  for (let i = 0; i < n; i++) s += words[at + i]
  return s
}

/** A DispatchPlan from read-back grouping buffers. */
function planOf(T: number, E: number, offsets: Int32Array, counts: Int32Array, rowToken: Int32Array, rowWeight: Float32Array, padded: boolean, capacity: number | null, mode: string, bytesCrossDevice: number, devices: number): DispatchPlan {
  const rows = offsets[E]
  const real = counts.reduce((a, b) => a + b, 0)
  return {
    mode,
    tokens: T,
    experts: E,
    offsets: offsets.slice(0, E + 1),
    counts,
    rowToken: rowToken.slice(0, rows),
    rowWeight: rowWeight.slice(0, rows),
    capacity: padded ? capacity : null,
    paddingRows: rows - real,
    dropped: [],
    traffic: { devices, sendRows: new Int32Array(devices * devices), bytesCrossDevice },
  }
}

/**
 * tokenRows of a host plan aligned with the routing's slots: row + 1 of the plan row that
 * computes (token, slot), 0 when the plan leaves the pair out.
 * @throws MOE_ROUTE_ERR_PLUGIN_FAILED when a plan row names a pair the routing does not have.
 */
export function planTokenRows(plan: DispatchPlan, routing: Routing, dispatcher: string): Uint32Array {
  const { tokens: T, slots: S, expertIds } = routing
  const out = new Uint32Array(Math.max(1, T * S))
  const E = plan.experts
  for (let e = 0; e < E; e++) {
    for (let r = plan.offsets[e]; r < plan.offsets[e + 1]; r++) {
      const t = plan.rowToken[r]
      if (t < 0) continue
      let j = 0
      while (j < S && !(expertIds[t * S + j] === e && out[t * S + j] === 0)) j++
      if (j === S) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `dispatcher ${dispatcher}: plan row ${r} computes token ${t} on expert ${e}, which the routing does not route there`, { plugin: dispatcher, hook: 'dispatch' })
      out[t * S + j] = r + 1
    }
  }
  return out
}

export { NO_PAIR }
