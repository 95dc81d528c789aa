/**
 * A restricted pickle reader for the `data.pkl` of `torch.save` archives. It interprets the
 * opcodes that build plain data (dicts, lists, tuples, numbers, strings, bytes, None, bools)
 * plus the few calls torch uses to describe tensors: `torch._utils._rebuild_tensor_v2` /
 * `_rebuild_tensor`, `collections.OrderedDict`, the typed storage classes (`torch.LongStorage`,
 * ...) and `BINPERSID` storage references. Every other global and every object-building opcode
 * (INST, OBJ, NEWOBJ, EXT*, text PERSID, BUILD on anything but a dict) is refused with
 * `MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED` before anything happens: nothing named in the file is
 * imported or called; globals only ever map to entries of a fixed table.
 *
 * Hand-written because the npm pickle readers either call registered constructors by name
 * (pickleparser) or target Python-compatible object graphs; an allow-list interpreter of ~40
 * opcodes is smaller than auditing them. Protocols 0–5 framing is accepted (FRAME is skipped).
 */
import { corrupt, refused } from '../io/errors.js'

/** A Python tuple (kept apart from lists). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python dict or OrderedDict; keys are strings, numbers or booleans. */
export class PyDict {
  readonly map = new Map<string | number | boolean | null, PyValue>()
  get(key: string): PyValue | undefined {
    return this.map.get(key)
  }
  keys(): (string | number | boolean | null)[] {
    return [...this.map.keys()]
  }
}

/** Element dtypes of torch storages this reader knows. */
export type TorchDtype = 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool' | 'float32' | 'float64' | 'float16' | 'bfloat16'

/** Bytes per element of a {@link TorchDtype}. */
export const TORCH_DTYPE_BYTES: Readonly<Record<TorchDtype, number>> = {
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1, float32: 4, float64: 8, float16: 2, bfloat16: 2,
}

/** A storage named by a `BINPERSID` record: `archive/data/<key>`. */
export class StorageRef {
  constructor(readonly dtype: TorchDtype, readonly key: string, readonly numel: number) {}
}

/** A tensor described by `_rebuild_tensor_v2(storage, offset, size, stride, ...)`; its data stays in the archive. */
export class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1)
  }
}

/** Values the reader builds. */
export type PyValue = null | boolean | number | string | Uint8Array | PyValue[] | PyTuple | PyDict | TensorRef | StorageRef | AllowedGlobal

/** One entry of the allow-list: what a GLOBAL resolves to. */
export class AllowedGlobal {
  constructor(readonly name: string, readonly kind: 'rebuild_tensor' | 'rebuild_tensor_v2' | 'ordered_dict' | 'storage', readonly dtype?: TorchDtype) {}
}

const STORAGE_TYPES: Readonly<Record<string, TorchDtype>> = {
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
}

/** Resolves `module.name` against the allow-list, or returns null. Never imports anything. */
export function allowedGlobal(module: string, name: string): AllowedGlobal | null {
  const full = `${module}.${name}`
  if (full === 'torch._utils._rebuild_tensor_v2') return new AllowedGlobal(full, 'rebuild_tensor_v2')
  if (full === 'torch._utils._rebuild_tensor') return new AllowedGlobal(full, 'rebuild_tensor')
  if (full === 'collections.OrderedDict') return new AllowedGlobal(full, 'ordered_dict')
  if (module === 'torch' && Object.hasOwn(STORAGE_TYPES, name)) return new AllowedGlobal(full, 'storage', STORAGE_TYPES[name])
  return null
}

/** Limits that keep a hostile pickle from exhausting memory. */
export interface PickleLimits {
  /** Most values on the stack plus memo entries (default 50 million). */
  readonly maxValues?: number
}

const MARK = Symbol('mark')
type StackItem = PyValue | typeof MARK

/**
 * Interprets a pickle with the allow-list above.
 * @param file archive path, for errors
 * @param where entry name, for errors
 */
export function readPickle(bytes: Uint8Array, file: string, where = 'data.pkl', limits: PickleLimits = {}): PyValue {
  const maxValues = limits.maxValues ?? 50_000_000
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const stack: StackItem[] = []
  const memo = new Map<number, PyValue>()
  const text = new TextDecoder('utf-8', { fatal: true })
  let pos = 0
  let values = 0
  const bad = (problem: string) => corrupt(file, `${where} at byte ${pos}`, problem)
  const need = (n: number) => {
    if (pos + n > bytes.length) throw bad(`pickle is truncated (needs ${n} more bytes)`)
  }
  const u8 = () => (need(1), bytes[pos++])
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true))
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true))
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true))
  const u64 = () => {
    need(8)
    const v = view.getBigUint64(pos, true)
    pos += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`length ${v} is too large`)
    return Number(v)
  }
  const take = (n: number) => {
    need(n)
    const out = bytes.subarray(pos, pos + n)
    pos += n
    return out
  }
  const str = (n: number) => {
    try {
      return text.decode(take(n))
    } catch {
      throw bad('string is not valid UTF-8')
    }
  }
  const line = () => {
    const end = bytes.indexOf(0x0a, pos)
    if (end < 0) throw bad('pickle is truncated (unterminated line)')
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end))
    pos = end + 1
    return s
  }
  const push = (v: StackItem) => {
    if (++values > maxValues) throw bad(`more than ${maxValues} values`)
    stack.push(v)
  }
  const pop = (): PyValue => {
    const v = stack.pop()
    if (v === undefined) throw bad('stack underflow')
    if (v === MARK) throw bad('unexpected MARK')
    return v
  }
  const top = (): PyValue => {
    const v = stack[stack.length - 1]
    if (v === undefined || v === MARK) throw bad('stack underflow')
    return v
  }
  const popMark = (): PyValue[] => {
    const i = stack.lastIndexOf(MARK)
    if (i < 0) throw bad('no MARK on the stack')
    const items = stack.splice(i) as StackItem[]
    items.shift()
    return items as PyValue[]
  }
  const key = (k: PyValue): string | number | boolean | null => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k
    throw bad('dict key is not a string, number, bool or None')
  }
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) throw bad('SETITEM(S) on something that is not a dict')
    if (kv.length % 2) throw bad('SETITEMS with an odd number of values')
    for (let i = 0; i < kv.length; i += 2) d.map.set(key(kv[i]), kv[i + 1])
  }
  const appendTo = (l: PyValue, items: PyValue[]) => {
    if (!Array.isArray(l)) throw bad('APPEND(S) on something that is not a list')
    for (const v of items) l.push(v)
  }
  const global = (module: string, name: string): AllowedGlobal => {
    const g = allowedGlobal(module, name)
    if (!g) {
      throw refused(file, `${where} at byte ${pos}`, `pickle names global "${module}.${name}", which is not a torch tensor-rebuild call: refused (nothing was imported or run)`, { global: `${module}.${name}` })
    }
    return g
  }
  const int = (n: number | bigint): number => {
    if (typeof n === 'bigint') {
      if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`integer ${n} is outside the safe range`)
      return Number(n)
    }
    return n
  }
  const longBytes = (b: Uint8Array): number => {
    if (b.length === 0) return 0
    if (b.length > 8) throw bad(`integer of ${b.length} bytes is too large`)
    let v = 0n
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i])
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length)
    return int(v)
  }
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof AllowedGlobal)) throw refused(file, `${where} at byte ${pos}`, 'REDUCE on something that is not an allowed callable: refused')
    if (!(args instanceof PyTuple)) throw bad('REDUCE arguments are not a tuple')
    const a = args.items
    if (fn.kind === 'ordered_dict') {
      const d = new PyDict()
      if (a.length === 1 && Array.isArray(a[0])) {
        for (const pair of a[0]) {
          if (!(pair instanceof PyTuple) || pair.items.length !== 2) throw bad('OrderedDict items are not pairs')
          d.map.set(key(pair.items[0]), pair.items[1])
        }
      } else if (a.length !== 0) throw bad('OrderedDict called with unexpected arguments')
      return d
    }
    if (fn.kind === 'rebuild_tensor_v2' || fn.kind === 'rebuild_tensor') {
      const [storage, offset, size, stride] = a
      if (!(storage instanceof StorageRef)) throw bad(`${fn.name}: first argument is not a storage reference`)
      const dims = (v: PyValue, what: string): number[] => {
        if (!(v instanceof PyTuple) || !v.items.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) throw bad(`${fn.name}: ${what} is not a tuple of non-negative integers`)
        return v.items as number[]
      }
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw bad(`${fn.name}: storage offset is not a non-negative integer`)
      const shape = dims(size, 'size')
      const strides = dims(stride, 'stride')
      if (shape.length !== strides.length) throw bad(`${fn.name}: size has ${shape.length} dims, stride ${strides.length}`)
      return new TensorRef(storage, offset, shape, strides)
    }
    throw refused(file, `${where} at byte ${pos}`, `${fn.name} is not callable here: refused`)
  }

  if (bytes.length === 0) throw bad('pickle is empty')
  for (;;) {
    const op = u8()
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw bad('unsupported pickle protocol')
        break
      case 0x95: // FRAME
        u64()
        break
      case 0x2e: // STOP
        if (stack.length !== 1) throw bad(`STOP with ${stack.length} values on the stack`)
        return pop()
      case 0x28: // MARK
        push(MARK)
        break
      case 0x7d: // EMPTY_DICT
        push(new PyDict())
        break
      case 0x5d: // EMPTY_LIST
        push([])
        break
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]))
        break
      case 0x4e: // NONE
        push(null)
        break
      case 0x88: // NEWTRUE
        push(true)
        break
      case 0x89: // NEWFALSE
        push(false)
        break
      case 0x4b: // BININT1
        push(u8())
        break
      case 0x4d: // BININT2
        push(u16())
        break
      case 0x4a: // BININT
        push(i32())
        break
      case 0x8a: // LONG1
        push(longBytes(take(u8())))
        break
      case 0x8b: // LONG4
        push(longBytes(take(u32())))
        break
      case 0x47: // BINFLOAT (big-endian)
        need(8)
        push(view.getFloat64(pos, false))
        pos += 8
        break
      case 0x8c: // SHORT_BINUNICODE
        push(str(u8()))
        break
      case 0x58: // BINUNICODE
        push(str(u32()))
        break
      case 0x8d: // BINUNICODE8
        push(str(u64()))
        break
      case 0x55: // SHORT_BINSTRING
        push(new TextDecoder('latin1').decode(take(u8())))
        break
      case 0x54: // BINSTRING
        push(new TextDecoder('latin1').decode(take(u32())))
        break
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice())
        break
      case 0x42: // BINBYTES
        push(take(u32()).slice())
        break
      case 0x8e: // BINBYTES8
        push(take(u64()).slice())
        break
      case 0x71: // BINPUT
        memo.set(u8(), top())
        break
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top())
        break
      case 0x94: // MEMOIZE
        memo.set(memo.size, top())
        break
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32()
        if (!memo.has(i)) throw bad(`memo ${i} is not set`)
        push(memo.get(i) as PyValue)
        break
      }
      case 0x30: // POP
        stack.pop()
        break
      case 0x31: // POP_MARK
        popMark()
        break
      case 0x32: // DUP
        push(top())
        break
      case 0x74: // TUPLE
        push(new PyTuple(popMark()))
        break
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]))
        break
      case 0x86: { // TUPLE2
        const b = pop()
        push(new PyTuple([pop(), b]))
        break
      }
      case 0x87: { // TUPLE3
        const c = pop()
        const b = pop()
        push(new PyTuple([pop(), b, c]))
        break
      }
      case 0x6c: // LIST
        push(popMark())
        break
      case 0x64: { // DICT
        const d = new PyDict()
        setItems(d, popMark())
        push(d)
        break
      }
      case 0x61: { // APPEND
        const v = pop()
        appendTo(top(), [v])
        break
      }
      case 0x65: { // APPENDS
        const items = popMark()
        appendTo(top(), items)
        break
      }
      case 0x73: { // SETITEM
        const v = pop()
        const k = pop()
        setItems(top(), [k, v])
        break
      }
      case 0x75: { // SETITEMS
        const kv = popMark()
        setItems(top(), kv)
        break
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line()
        const name = line()
        push(global(module, name))
        break
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop()
        const module = pop()
        if (typeof module !== 'string' || typeof name !== 'string') throw bad('STACK_GLOBAL needs two strings')
        push(global(module, name))
        break
      }
      case 0x52: { // REDUCE
        const args = pop()
        const fn = pop()
        push(reduce(fn, args))
        break
      }
      case 0x51: { // BINPERSID
        const pid = pop()
        if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length !== 5) {
          throw refused(file, `${where} at byte ${pos}`, 'persistent id is not a torch storage record: refused')
        }
        const [, type, storageKey, , numel] = pid.items
        if (!(type instanceof AllowedGlobal) || type.kind !== 'storage' || !type.dtype) throw bad('storage record does not name a typed storage class')
        if (typeof storageKey !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(storageKey)) throw bad(`storage key ${JSON.stringify(storageKey)} is not a plain name`)
        if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw bad('storage size is not a non-negative integer')
        push(new StorageRef(type.dtype, storageKey, numel))
        break
      }
      case 0x62: { // BUILD: only state updates of dicts (OrderedDict)
        const state = pop()
        const target = top()
        if (!(target instanceof PyDict) || !(state === null || state instanceof PyDict)) {
          throw refused(file, `${where} at byte ${pos}`, 'BUILD (object state) on something that is not a dict: refused')
        }
        if (state) for (const [k, v] of state.map) target.map.set(k, v)
        break
      }
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x81: // NEWOBJ
      case 0x92: // NEWOBJ_EX
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
      case 0x50: // PERSID (text)
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        throw refused(file, `${where} at byte ${pos - 1}`, `pickle opcode 0x${op.toString(16)} builds objects or calls code: refused`, { opcode: op })
      default:
        pos--
        throw bad(`pickle opcode 0x${op.toString(16)} is unknown or not supported (corrupt data.pkl?)`)
    }
  }
}
