/**
 * The Reflect metadata API tsyringe needs, in the browser build (replaces `polyfill.ts`, which
 * imports reflect-metadata: 12.9 kB of a 120 kB budget). It installs nothing when a polyfill is
 * already there (reflect-metadata, core-js or @abraham/reflection loaded first keeps its
 * metadata), and it has `getOwnMetadataKeys` and `deleteMetadata`, so reflect-metadata loaded
 * later adopts it as its fallback provider instead of hiding what was defined here.
 * Metadata lives in a WeakMap per target and property; lookups without "Own" walk the prototype chain.
 */
type Key = string | symbol | undefined
const store = new WeakMap<object, Map<Key, Map<unknown, unknown>>>()

const own = (target: object, property: Key, create: boolean): Map<unknown, unknown> | undefined => {
  let byProperty = store.get(target)
  if (!byProperty && create) store.set(target, (byProperty = new Map()))
  let map = byProperty?.get(property)
  if (!map && create) byProperty!.set(property, (map = new Map()))
  return map
}
const chain = (target: object | null, property: Key, key: unknown): Map<unknown, unknown> | undefined => {
  for (let t = target; t; t = Object.getPrototypeOf(t)) {
    const map = own(t, property, false)
    if (map?.has(key)) return map
  }
  return undefined
}

const api = {
  defineMetadata: (key: unknown, value: unknown, target: object, property?: Key) => void own(target, property, true)!.set(key, value),
  hasOwnMetadata: (key: unknown, target: object, property?: Key) => own(target, property, false)?.has(key) ?? false,
  getOwnMetadata: (key: unknown, target: object, property?: Key) => own(target, property, false)?.get(key),
  getOwnMetadataKeys: (target: object, property?: Key) => [...(own(target, property, false)?.keys() ?? [])],
  deleteMetadata: (key: unknown, target: object, property?: Key) => own(target, property, false)?.delete(key) ?? false,
  hasMetadata: (key: unknown, target: object, property?: Key) => chain(target, property, key) !== undefined,
  getMetadata: (key: unknown, target: object, property?: Key) => chain(target, property, key)?.get(key),
  getMetadataKeys: (target: object, property?: Key) => {
    const keys = new Set<unknown>()
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) for (const k of own(t, property, false)?.keys() ?? []) keys.add(k)
    return [...keys]
  },
  metadata: (key: unknown, value: unknown) => (target: object, property?: Key) => api.defineMetadata(key, value, target, property),
}

const reflect = Reflect as unknown as Record<string, unknown>
if (typeof reflect.getMetadata !== 'function') Object.assign(reflect, api)

export {}
