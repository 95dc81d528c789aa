/**
 * Validation errors as {@link MoeIssue}s: the path names the exact field, whichever engine
 * (Ajv in Node, the interpreter in the browser build) produced the Ajv-shaped error objects.
 */
import type { ErrorObject } from 'ajv'
import type { MoeErrorCode, MoeIssue } from '../errors.js'

/** Turns Ajv errors into issues whose path names the exact field (prefixed by `base`). */
export function ajvIssues(errors: readonly ErrorObject[] | null | undefined, base: string, code: MoeErrorCode, plugin?: string): MoeIssue[] {
  if (!errors) return []
  const issues: MoeIssue[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    let path = base + e.instancePath
    let message = e.message ?? 'is invalid'
    const p = e.params as Record<string, unknown>
    if (e.keyword === 'required') {
      path += `/${p.missingProperty}`
      message = 'is required'
    } else if (e.keyword === 'additionalProperties') {
      path += `/${p.additionalProperty}`
      message = 'is not a known field'
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    } else if (e.keyword === 'if') {
      continue
    }
    const key = `${path}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ code, path: path || '/', message, ...(plugin ? { plugin } : {}) })
  }
  return issues
}

/** Formats issues as lines `path: message` for error messages. */
export function formatIssues(issues: readonly MoeIssue[]): string {
  return issues.map((i) => `  ${i.path}: ${i.message}${i.plugin ? ` (plugin ${i.plugin})` : ''}`).join('\n')
}
