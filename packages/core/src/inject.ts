import { inject as tsInject, injectAll as tsInjectAll, injectable } from 'tsyringe'
import type { Token } from './tokens.js'

export { injectable }

/**
 * Constructor-parameter decorator taking a moe-route {@link Token}. Put it on every
 * parameter: esbuild (tsup, vitest) emits no `design:paramtypes`, so an undecorated
 * parameter silently receives `undefined` in built code.
 */
export const inject = <T>(token: Token<T>, options?: { isOptional?: boolean }) =>
  options ? tsInject(token.key, options as never) : tsInject(token.key)

/** Multi-injection of every registration under a token. */
export const injectAll = <T>(token: Token<T>, options?: { isOptional?: boolean }) =>
  options ? tsInjectAll(token.key, options as never) : tsInjectAll(token.key)
