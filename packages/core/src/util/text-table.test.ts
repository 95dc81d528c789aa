import { describe, expect, it } from 'vitest'
import { textTable } from './text-table.js'

describe('textTable', () => {
  it('left-aligns the first column, right-aligns the others, two spaces apart', () => {
    expect(textTable([['policy', 'drops'], ['capacity-drop', 12], ['reroute', 3]])).toBe(
      ['policy         drops', 'capacity-drop     12', 'reroute            3'].join('\n'),
    )
  })

  it('blanks the cells a short row lacks and renders nothing for no rows', () => {
    expect(textTable([['a', 'bb', 'ccc'], ['dddd']])).toBe(['a     bb  ccc', 'dddd         '].join('\n'))
    expect(textTable([])).toBe('')
  })
})
