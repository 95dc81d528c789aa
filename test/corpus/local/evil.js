import { writeFileSync } from 'node:fs'
writeFileSync('PWNED-local', 'ran')
export default {}
