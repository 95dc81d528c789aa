import { describe, expect, it } from 'vitest'
import { importOptional, isMissingPackage } from './optional.js'

describe('optional packages', () => {
  it('turns a missing optional package into MOE_ROUTE_ERR_PACKAGE_MISSING with the install command', async () => {
    const e = await importOptional('@moe-route/no-such-package', '--flag', () => import('@moe-route/no-such-package' as string)).catch((x) => x)
    expect(e.code).toBe('MOE_ROUTE_ERR_PACKAGE_MISSING')
    expect(e.message).toBe('--flag needs the optional package @moe-route/no-such-package, which is not installed: npm install @moe-route/no-such-package')
  })

  it('keeps the error of a package that is there but fails, or of what it imports', async () => {
    const inner = Object.assign(new Error("Cannot find package 'left-pad' imported from /x/node_modules/@moe-route/telemetry/dist/index.js"), { code: 'ERR_MODULE_NOT_FOUND' })
    expect(isMissingPackage(inner, '@moe-route/telemetry')).toBe(false)
    const own = Object.assign(new Error("Cannot find package '@moe-route/telemetry' imported from /x/cli/dist/bin.js"), { code: 'ERR_MODULE_NOT_FOUND' })
    expect(isMissingPackage(own, '@moe-route/telemetry')).toBe(true)
    const boom = new Error('boom')
    await expect(importOptional('@moe-route/telemetry', 'x', () => Promise.reject(boom))).rejects.toBe(boom)
  })
})
