/** A DI token that carries its type. `Symbol.for` keeps it stable across ESM/CJS copies. */
export interface Token<T> {
  readonly key: symbol
  readonly description: string
  /** Phantom field: only carries `T` for type inference. */
  readonly __type?: T
}

/**
 * Defines a DI token. Interfaces and their tokens share a name (`Router` the type,
 * `Router` the token).
 * @example
 * export interface Clock { now(): number }
 * export const Clock = defineToken<Clock>('Clock')
 */
export function defineToken<T>(description: string): Token<T> {
  return { key: Symbol.for(`@moe-route/core:${description}`), description }
}
