import { writeFileSync } from 'node:fs'
writeFileSync('PWNED-bad-package-json', 'ran')
