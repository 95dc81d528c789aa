// tsyringe needs the Reflect metadata API at import time. Imported first by container.ts.
import 'reflect-metadata'
