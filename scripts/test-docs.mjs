#!/usr/bin/env node
// Runs every code sample of README.md, docs/*.md and the package and example READMEs, as written:
// ```ts / ```js blocks run under tsx, ```sh / ```bash blocks run in bash (set -e), ```json /
// ```jsonc blocks parse, and those that are configs pass `moe-route validate`. Samples run in a
// scratch folder whose entries link to the checkout's (packages, examples, node_modules, …), so
// `npx moe-route …` and relative paths work as at the root, and files they write land there.
// Markers in the Markdown, right above a block (invisible when rendered):
//   <!-- docs-test: skip <reason> -->   the block cannot run here; the reason is printed
//   <!-- docs-test: given <code> -->    a ts/js block that continues a story (`routing`, `logits`
//                                       from earlier): <code> runs first, with `docs` bound to
//                                       @moe-route/core/testing (randomLogits, randomRouting,
//                                       policyContext)
//   <!-- docs-test: file <path> -->     the block shows a file of the repository (built and
//                                       tested there): each line it shows must be in the file,
//                                       in the same order
// Blocks of other languages (text, yaml, diff, python) are not code to run. Run after a build.
// Usage: node scripts/test-docs.mjs [file.md …] [--filter text]
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseJsonc } from 'jsonc-parser'

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '')
const args = process.argv.slice(2)
const filterAt = args.indexOf('--filter')
const filter = filterAt >= 0 ? args[filterAt + 1] : null
const named = args.filter((a, i) => !a.startsWith('--') && (filterAt < 0 || i !== filterAt + 1))

function markdownFiles() {
  const out = ['README.md']
  for (const f of readdirSync(join(root, 'docs'))) if (f.endsWith('.md')) out.push(`docs/${f}`)
  const walk = (dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'fixtures' || e.name.startsWith('.')) continue
      const p = `${dir}/${e.name}`
      if (e.isDirectory()) walk(p)
      else if (e.name === 'README.md') out.push(p)
    }
  }
  walk('packages')
  walk('examples')
  return out
}

/** Fenced blocks with their language, first line number and the skip marker above them. */
function blocks(file) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n')
  const found = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)/.exec(lines[i])
    if (!open) continue
    const indent = open[1].length
    let j = i + 1
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) j++
    let k = i - 1
    while (k >= 0 && lines[k].trim() === '') k--
    const marker = k >= 0 ? /<!--\s*docs-test:\s*(skip|given|file)\s+(.*?)\s*-->/.exec(lines[k]) : null
    const [skip, given, inFile] = ['skip', 'given', 'file'].map((m) => (marker?.[1] === m ? marker[2] : undefined))
    found.push({ file, line: i + 1, lang: open[2].toLowerCase(), code: lines.slice(i + 1, j).map((l) => l.slice(indent)).join('\n'), skip, given, inFile })
    i = j
  }
  return found
}

// The scratch folder: links to the checkout's entries.
const work = mkdtempSync(join(tmpdir(), 'moe-route-docs-'))
for (const e of readdirSync(root)) if (!['.git', '.turbo'].includes(e)) symlinkSync(join(root, e), join(work, e))
// samples live under node_modules so that they resolve the workspace's packages; one folder per run
mkdirSync(join(root, 'node_modules', '.docs-test'), { recursive: true })
const scripts = mkdtempSync(join(root, 'node_modules', '.docs-test', 'run-'))
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', FORCE_COLOR: '0', npm_config_update_notifier: 'false' }
const run = (cmd, argv, timeout = 300_000) => spawnSync(cmd, argv, { cwd: work, env, encoding: 'utf8', timeout })

const CONFIG_KEYS = new Set(['$schema', 'model', 'router', 'policies', 'dispatcher', 'placement', 'store', 'backend', 'devices', 'plugins', 'workload', 'weights', 'stream', 'activationBytes', 'seed'])
const CODE = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs', 'sh', 'bash', 'shell', 'json', 'jsonc'])

const results = []
let n = 0
for (const file of named.length ? named : markdownFiles()) {
  for (const b of blocks(file)) {
    const where = `${b.file}:${b.line}`
    if (filter && !where.includes(filter)) continue
    if (!CODE.has(b.lang)) continue
    if (b.skip) {
      results.push({ where, lang: b.lang, status: 'skipped', why: b.skip })
      continue
    }
    const t0 = performance.now()
    let ok = true
    let why = ''
    if (b.inFile) {
      // every line of code the block shows (comment lines aside) appears in the file, in order
      const path = join(root, b.inFile)
      // (a trailing `// comment` may differ: the docs explain more than the file)
      const code = (l) => l.replace(/\s+\/\/ .*$/, '').trim()
      const src = existsSync(path) ? readFileSync(path, 'utf8').split('\n').map(code) : []
      let at = 0
      const missing = b.code.split('\n').map(code).filter((l) => l && !l.startsWith('//')).find((l) => {
        while (at < src.length && src[at] !== l) at++
        return at++ >= src.length
      })
      ok = src.length > 0 && missing === undefined
      why = ok ? '' : `${b.inFile} does not have this line where the block shows it: ${missing ?? '(no such file)'}`
    } else if (['ts', 'typescript', 'js', 'javascript', 'mjs'].includes(b.lang)) {
      const ext = b.lang.startsWith('t') ? 'mts' : 'mjs'
      const f = join(scripts, `${b.file.replace(/[^\w]+/g, '-')}-${b.line}.${ext}`)
      const prelude = b.given ? `import * as docs from '@moe-route/core/testing'\n${b.given}\n` : ''
      writeFileSync(f, prelude + b.code + '\n')
      const r = run(process.execPath, ['--import', 'tsx', f])
      ok = r.status === 0
      why = ok ? '' : (r.error?.message ?? '') + (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')
    } else if (['sh', 'bash', 'shell'].includes(b.lang) && /(^|[;&|]\s*)(sudo\s+)?npm\s+(ci|install|i|uninstall|publish|pack)\b/m.test(b.code)) {
      // the scratch folder links the checkout's node_modules: an install there would replace it
      ok = false
      why = 'installs packages (npm ci/install/publish): mark it <!-- docs-test: skip <reason> --> and run it in CI as its own step'
    } else if (['sh', 'bash', 'shell'].includes(b.lang)) {
      const r = run('bash', ['-e', '-o', 'pipefail', '-c', b.code], 600_000)
      ok = r.status === 0
      why = ok ? '' : (r.error?.message ?? '') + (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')
    } else {
      const errors = []
      const value = parseJsonc(b.code, errors, { allowTrailingComma: b.lang === 'jsonc', disallowComments: b.lang === 'json' })
      if (errors.length) {
        ok = false
        why = `not valid ${b.lang} (error ${errors[0].error} at offset ${errors[0].offset})`
      } else if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0 && Object.keys(value).every((k) => CONFIG_KEYS.has(k)) && ('policies' in value || 'model' in value)) {
        // in the checkout's root (not the scratch folder of links), so that a local plugin path
        // such as ./examples/custom-policy lies inside the config's project, as at the root
        const f = join(root, `.docs-config-${process.pid}-${++n}.json`)
        writeFileSync(f, b.code)
        const r = run(process.execPath, [join(root, 'packages/cli/bin/moe-route.js'), 'validate', '--config', f])
        rmSync(f, { force: true })
        ok = r.status === 0
        why = ok ? 'config: valid' : `config: ${(r.stderr || r.stdout).trim()}`
      } else why = 'parses'
    }
    results.push({ where, lang: b.lang, status: ok ? 'passed' : 'failed', why, s: (performance.now() - t0) / 1000 })
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${where} (${b.lang}, ${((performance.now() - t0) / 1000).toFixed(1)} s)${ok ? '' : `\n${why.replace(/^/gm, '     ')}`}`)
  }
}
for (const r of results.filter((r) => r.status === 'skipped')) console.log(`skip ${r.where} (${r.lang}): ${r.why}`)
rmSync(work, { recursive: true, force: true })
rmSync(scripts, { recursive: true, force: true })
const count = (s) => results.filter((r) => r.status === s).length
console.log(`\ndocs: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`)
process.exitCode = count('failed') ? 1 : 0
