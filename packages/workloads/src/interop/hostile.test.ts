/**
 * Bad input: hostile pickles (committed, written by torch.save in make_hostile.py) and corrupt
 * files derived here from the real fixtures (truncated, patched, reshaped, rank-mismatched,
 * unknown keys). Every one is refused with a coded error naming the file; nothing runs.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { zipSync } from 'fflate'
import { afterAll, describe, expect, it } from 'vitest'
import { expectMoeError, tempDir } from '../io/test-utils.js'
import { openZip } from '../io/zip.js'
import { openRoutingRecord } from './open-record.js'
import { recordCounts } from './record.js'

const dir = join(import.meta.dirname, '../../test/fixtures/interop')
const MARKER = '/tmp/moe-route-pickle-marker'
const tmp = tempDir()
afterAll(() => tmp.cleanup())

const CORRUPT = 'MOE_ROUTE_ERR_TRACE_CORRUPT'
const REFUSED = 'MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED'

/** Opens and fully reads a record (every step), so lazy parts are read too. */
async function readAll(path: string, o = {}) {
  const rec = await openRoutingRecord(path, o)
  try {
    return await recordCounts(rec)
  } finally {
    await rec.close()
  }
}

/** Rewrites a torch archive with `edit` applied to its entries (stored, like torch.save). */
async function rezip(src: string, out: string, edit: (entries: Record<string, Uint8Array>) => void): Promise<string> {
  const zip = await openZip(src)
  const entries: Record<string, Uint8Array> = {}
  for (const name of zip.entries.keys()) entries[name] = await zip.read(name)
  await zip.close()
  edit(entries)
  writeFileSync(out, zipSync(entries, { level: 0 }))
  return out
}

const replaceBytes = (b: Uint8Array, from: string, to: string): Uint8Array => {
  const buf = Buffer.from(b)
  const i = buf.indexOf(from, 0, 'latin1')
  expect(i, `"${from}" in the pickle`).toBeGreaterThanOrEqual(0)
  return new Uint8Array(Buffer.concat([buf.subarray(0, i), Buffer.from(to, 'latin1'), buf.subarray(i + from.length)]))
}
const pkl = (entries: Record<string, Uint8Array>) => Object.keys(entries).find((n) => n.endsWith('/data.pkl'))!

describe('hostile pickles are refused and never run', () => {
  const hostile = readdirSync(join(dir, 'hostile')).filter((f) => f.endsWith('.pt'))
  it.each(hostile)('%s', async (f) => {
    const path = join(dir, 'hostile', f)
    const err = await expectMoeError(readAll(path), REFUSED, /refused/)
    expect(err.message).toContain(path)
    expect(String(err.details.global ?? '')).toMatch(/^(posix\.system|subprocess\.Popen|commands\.Popen|builtins\.eval|__builtin__\.eval)$/)
    expect(existsSync(MARKER)).toBe(false)
  })

  it('a real dump whose GLOBAL is patched to os.system is refused', async () => {
    const out = await rezip(join(dir, 'olmoe-sglang-expert-distribution-stat.pt'), tmp.file('patched-global.pt'), (e) => {
      e[pkl(e)] = replaceBytes(e[pkl(e)], 'torch._utils\n_rebuild_tensor_v2\n', 'os\nsystem\n')
    })
    const err = await expectMoeError(readAll(out), REFUSED, /"os\.system"/)
    expect(err.details.file).toBe(out)
  })

  it('the storage class may not be swapped for another callable either', async () => {
    const out = await rezip(join(dir, 'mixtral-sglang-expert-distribution-stat.pt'), tmp.file('patched-storage.pt'), (e) => {
      e[pkl(e)] = replaceBytes(e[pkl(e)], 'torch\nLongStorage\n', 'torch\nload\n')
    })
    await expectMoeError(readAll(out), REFUSED, /"torch\.load"/)
  })

  afterAll(() => expect(existsSync(MARKER)).toBe(false))
})

describe('corrupt records get TRACE_CORRUPT naming the file and the part', () => {
  const pt = join(dir, 'olmoe-sglang-expert-distribution-stat.pt')
  const bytes = readFileSync(pt)

  it.each([10, 100, 1000, bytes.length - 30, bytes.length - 1])('a .pt truncated to %i bytes', async (n) => {
    const out = tmp.file(`truncated-${n}.pt`)
    writeFileSync(out, bytes.subarray(0, n))
    const err = await expectMoeError(readAll(out), CORRUPT)
    expect(err.message).toContain(out)
  })

  it('a storage shorter than its tensor', async () => {
    const out = await rezip(pt, tmp.file('short-storage.pt'), (e) => {
      const name = Object.keys(e).find((n) => n.endsWith('/data/0'))!
      e[name] = e[name].subarray(0, 100)
    })
    await expectMoeError(readAll(out), CORRUPT, /data\/0/, /truncated/)
  })

  it('a pickle cut short', async () => {
    const out = await rezip(pt, tmp.file('short-pickle.pt'), (e) => {
      e[pkl(e)] = e[pkl(e)].subarray(0, 120)
    })
    await expectMoeError(readAll(out), CORRUPT, /data\.pkl/, /truncated/)
  })

  it('an unknown key in the dump', async () => {
    const out = await rezip(pt, tmp.file('unknown-key.pt'), (e) => {
      e[pkl(e)] = replaceBytes(e[pkl(e)], 'rank', 'rnak')
    })
    await expectMoeError(readAll(out), CORRUPT, /unknown key "rnak"/)
  })

  it('a big-endian archive', async () => {
    const out = await rezip(pt, tmp.file('big-endian.pt'), (e) => {
      const name = Object.keys(e).find((n) => n.endsWith('/byteorder'))!
      e[name] = new TextEncoder().encode('big')
    })
    await expectMoeError(readAll(out), CORRUPT, /byteorder/)
  })

  const npy = join(dir, 'mixtral-vllm-routed-experts.npy')
  const npyBytes = readFileSync(npy)
  const patchNpy = (name: string, from: string, to: string) => {
    const out = tmp.file(name)
    writeFileSync(out, Buffer.from(replaceBytes(npyBytes, from, to.padEnd(from.length, ' '))))
    return out
  }

  it('a routed-experts array of the wrong rank', async () => {
    await expectMoeError(readAll(patchNpy('rank4.npy', '(8192, 2, 2)', '(2,4096,2,2)')), CORRUPT, /rank4\.npy/, /not \[tokens, layers, top_k\]/)
  })

  it('a routed-experts array shorter than its shape', async () => {
    await expectMoeError(readAll(patchNpy('short.npy', '(8192, 2, 2)', '(8193, 2, 2)')), CORRUPT, /short\.npy/, /truncated/)
  })

  it('float logits are not routed experts', async () => {
    await expectMoeError(readAll(patchNpy('float.npy', "'<i2'", "'<f2'"), { format: 'vllm-npy' }), CORRUPT, /not a little-endian integer/)
  })

  it('ids at or above the declared E', async () => {
    await expectMoeError(readAll(npy, { experts: 4 }), CORRUPT, /expert id [4-7] is out of range/)
  })

  const trt = join(dir, 'olmoe-trtllm-stats')
  const trtCopy = (name: string) => {
    const d = tmp.file(name)
    mkdirSync(d)
    copyFileSync(join(trt, 'meta_info.json'), join(d, 'meta_info.json'))
    copyFileSync(join(trt, 'rank0.safetensors'), join(d, 'rank0.safetensors'))
    return d
  }

  it('TensorRT-LLM ranks with a gap', async () => {
    const d = trtCopy('gap')
    copyFileSync(join(trt, 'rank0.safetensors'), join(d, 'rank2.safetensors'))
    await expectMoeError(readAll(d), CORRUPT, /rank 1 is missing/)
  })

  it('TensorRT-LLM ranks with different iterations', async () => {
    const d = trtCopy('mismatch')
    copyFileSync(join(dir, 'mixtral-trtllm-stats', 'rank0.safetensors'), join(d, 'rank1.safetensors'))
    await expectMoeError(readAll(d), CORRUPT, /rank1\.safetensors/)
  })

  it('TensorRT-LLM meta_info with an unknown key', async () => {
    const d = trtCopy('meta-key')
    const meta = JSON.parse(readFileSync(join(trt, 'meta_info.json'), 'utf8'))
    writeFileSync(join(d, 'meta_info.json'), JSON.stringify({ ...meta, num_slots: 80 }))
    await expectMoeError(readAll(d), CORRUPT, /meta_info\.json/, /"num_slots"/)
  })

  it('TensorRT-LLM counts of the wrong shape', async () => {
    const d = trtCopy('shape')
    const meta = JSON.parse(readFileSync(join(trt, 'meta_info.json'), 'utf8'))
    writeFileSync(join(d, 'meta_info.json'), JSON.stringify({ ...meta, num_experts: 32 }))
    await expectMoeError(readAll(d), CORRUPT, /rank0\.safetensors/, /expected \[32\]/)
  })

  it('a missing file is FILE_NOT_FOUND', async () => {
    await expectMoeError(readAll(tmp.file('nope.pt')), 'MOE_ROUTE_ERR_FILE_NOT_FOUND', /nope\.pt/)
  })
})
