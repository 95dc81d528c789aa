/**
 * Optional packages of the CLI (the WebGPU backend with its Dawn binaries, the metrics bridge):
 * optional peer dependencies, imported only when a command asks for them. A missing one is
 * MOE_ROUTE_ERR_PACKAGE_MISSING with the `npm install` that adds it; one that is installed but
 * fails to load keeps its own error.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'

/** True when `e` says that `pkg` itself (not something it imports) cannot be found. */
export function isMissingPackage(e: unknown, pkg: string): boolean {
  const err = e as { code?: string; message?: string } | null
  if (!err || (err.code !== 'ERR_MODULE_NOT_FOUND' && err.code !== 'MODULE_NOT_FOUND')) return false
  return new RegExp(`['"]${pkg.replace(/[/\\^$*+?.()|[\]{}-]/g, '\\$&')}['"/]`).test(err.message ?? '')
}

/** Imports an optional package, or throws MOE_ROUTE_ERR_PACKAGE_MISSING saying how to add it. */
export async function importOptional<T>(pkg: string, forWhat: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (cause) {
    if (!isMissingPackage(cause, pkg)) throw cause
    throw new MoeError(ErrorCodes.PACKAGE_MISSING, `${forWhat} needs the optional package ${pkg}, which is not installed: npm install ${pkg}`, { plugin: pkg }, { cause })
  }
}
