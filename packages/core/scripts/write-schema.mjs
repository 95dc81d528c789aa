// Writes schema/config.schema.json from the built package (run after tsup).
import { writeFileSync } from 'node:fs'
import { configSchema } from '../dist/index.js'
writeFileSync(new URL('../schema/config.schema.json', import.meta.url), JSON.stringify(configSchema, null, 2) + '\n')
