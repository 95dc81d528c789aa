/**
 * Reading JSON and config files from disk with the limits a hostile file cannot get around:
 * regular files only (a device such as /dev/zero would be read forever), at most
 * {@link MAX_JSON_BYTES}, errors that name the file and carry stable codes. Config files may be
 * JSONC (comments, trailing commas), read by Microsoft's jsonc-parser into plain data (no
 * prototype is ever set from a key) — no file is ever executed.
 */
import { readFileSync, statSync } from 'node:fs'
import { parseTree, printParseErrorCode, type Node as JsoncNode, type ParseError } from 'jsonc-parser'
import { ErrorCodes, MoeError, type MoeErrorCode } from '../errors.js'

/** Largest JSON document read from a file or stdin (256 MiB). */
export const MAX_JSON_BYTES = 256 * 2 ** 20

/**
 * Reads a text file of at most MAX_JSON_BYTES that must be a regular file (a device or a FIFO
 * such as /dev/zero would be read forever); errors name the file and carry stable codes.
 */
function readBoundedText(path: string): string {
  try {
    const st = statSync(path)
    if (!st.isFile()) throw new Error('not a regular file')
    const size = st.size
    if (size > MAX_JSON_BYTES) throw new MoeError(ErrorCodes.SIZE_LIMIT, `${path} is ${size} bytes, more than the ${MAX_JSON_BYTES} a JSON document may have`, { file: path })
    return readFileSync(path, 'utf8')
  } catch (cause) {
    if ((cause as MoeError).code === ErrorCodes.SIZE_LIMIT) throw cause
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read ${path}: ${(cause as Error).message}`, { file: path }, { cause })
  }
}

/** Reads and parses a JSON file (bounded, regular files only); errors name the file and carry stable codes. */
export function readJsonFile(path: string): unknown {
  return parseJsonText(readBoundedText(path), path, ErrorCodes.CONFIG_PARSE)
}

/** Empty (or all-whitespace) text is MOE_ROUTE_ERR_INPUT_EMPTY naming `what`. */
function assertNotEmpty(text: string, what: string): void {
  if (text.trim() === '') throw new MoeError(ErrorCodes.INPUT_EMPTY, `${what} is empty (expected a JSON document)`, { file: what })
}

/** Parses JSON text; empty text is MOE_ROUTE_ERR_INPUT_EMPTY, bad JSON `code`, both naming `what`. */
export function parseJsonText(text: string, what: string, code: MoeErrorCode = ErrorCodes.INPUT_INVALID): unknown {
  assertNotEmpty(text, what)
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new MoeError(code, `${what} is not valid JSON: ${(cause as Error).message}`, { file: what }, { cause })
  }
}

/**
 * Reads a config file: JSON with line and block comments and trailing commas allowed (JSONC,
 * as VS Code reads its settings; parsed by Microsoft's jsonc-parser). Errors name the file,
 * line and column. Plain JSON takes JSON.parse; JSONC values are built with own data properties
 * only, as JSON.parse builds them (a `__proto__` key stays a key the config check refuses,
 * never an object's prototype), and nesting too deep for the parser is a parse error.
 */
export function readConfigFile(path: string): unknown {
  const text = readBoundedText(path)
  assertNotEmpty(text, path)
  try {
    return JSON.parse(text)
  } catch {
    // not plain JSON: read it as JSONC below (its errors carry line and column)
  }
  const errors: ParseError[] = []
  try {
    const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false })
    if (errors.length > 0) {
      const e = errors[0]
      const before = text.slice(0, e.offset).split('\n')
      const where = `line ${before.length}, column ${before[before.length - 1].length + 1}`
      throw new MoeError(ErrorCodes.CONFIG_PARSE, `${path} is not valid JSON (comments allowed): ${printParseErrorCode(e.error)} at ${where}`, { file: path, record: where })
    }
    return tree ? jsonValue(tree) : undefined
  } catch (cause) {
    if (cause instanceof RangeError) throw new MoeError(ErrorCodes.CONFIG_PARSE, `${path} is nested too deeply to read`, { file: path }, { cause })
    throw cause
  }
}

/** A jsonc-parser tree node as a plain value (objects get own data properties, as JSON.parse makes). */
function jsonValue(node: JsoncNode): unknown {
  switch (node.type) {
    case 'object': {
      const obj: Record<string, unknown> = {}
      for (const prop of node.children ?? []) {
        const [key, value] = prop.children ?? []
        if (!key || !value) continue
        Object.defineProperty(obj, String(key.value), { value: jsonValue(value), enumerable: true, writable: true, configurable: true })
      }
      return obj
    }
    case 'array':
      return (node.children ?? []).map(jsonValue)
    default:
      return node.value
  }
}
