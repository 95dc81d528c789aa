/**
 * Residency targets: where a store's slots physically live. The store decides *which* expert
 * goes into *which* slot; a target moves the bytes. `host` only accounts (simulation, the CPU
 * backend); `webgpu` allocates one GPU buffer per slot (see webgpu-target.ts).
 */

/** What a backend needs to read an expert from its slot. */
export interface SlotBinding {
  readonly device: number
  /** Slot index, or -1 for the streaming buffer of a bypassed batch. */
  readonly slot: number
  readonly expert: number
  /** The GPU buffer holding the expert (WebGPU target). */
  readonly buffer?: GPUBuffer
  /** The bytes (host target with `keepBytes`, and the CPU path of a streamed expert). */
  readonly bytes?: Uint8Array
}

/** Physical slots of one device. */
export interface ResidencyTarget {
  /** `host`, `webgpu` or your own. */
  readonly kind: string
  readonly slots: number
  /** Bytes of one slot (one expert). */
  readonly slotBytes: number
  /** Copies an expert's bytes into `slot`; must not touch any other slot. */
  upload(slot: number, expert: number, bytes: Uint8Array): void | Promise<void>
  /** Copies a streamed (bypassed) expert into a scratch buffer outside the slots. */
  stream?(expert: number, bytes: Uint8Array): void | Promise<void>
  /** How a backend reads `slot` (or the stream buffer for slot -1). */
  binding(slot: number, expert: number, device: number): SlotBinding
  /** Resolves when every upload issued so far has completed (GPU queue drained). */
  flush?(): Promise<void>
  /** Frees the slots. */
  dispose?(): void
}

/** Options of {@link hostTarget}. */
export interface HostTargetOptions {
  readonly slots: number
  readonly slotBytes: number
  /**
   * Keep a reference to each slot's bytes so a CPU backend can read them through `binding`
   * (default true). Host weights are shared, not copied.
   */
  readonly keepBytes?: boolean
}

/**
 * The host-only target: slots are bookkeeping over host memory (the CPU backend computes from
 * host weights; the simulator needs no bytes at all). Uploads cost nothing but are counted.
 */
export function hostTarget(options: HostTargetOptions): ResidencyTarget & { readonly uploads: number } {
  const keep = options.keepBytes ?? true
  const held: (Uint8Array | undefined)[] = new Array(options.slots)
  let streamed: Uint8Array | undefined
  let uploads = 0
  return {
    kind: 'host',
    slots: options.slots,
    slotBytes: options.slotBytes,
    get uploads() {
      return uploads
    },
    upload(slot, _expert, bytes) {
      uploads++
      if (keep) held[slot] = bytes
    },
    stream(_expert, bytes) {
      uploads++
      if (keep) streamed = bytes
    },
    binding(slot, expert, device) {
      const bytes = slot < 0 ? streamed : held[slot]
      return bytes ? { device, slot, expert, bytes } : { device, slot, expert }
    },
    dispose() {
      held.fill(undefined)
      streamed = undefined
    },
  }
}
