/**
 * The rxjs values core uses, imported from their own modules rather than the package index.
 * Under Node the `rxjs` index is CommonJS that loads all of rxjs (some 300 modules, about a
 * quarter of a CLI start on a small VM); these paths are rxjs's own `./internal/*` exports and
 * resolve, under every condition, to the very modules the index re-exports, so the classes are
 * the ones users get from `rxjs` (one copy, `instanceof` holds).
 */
export { Observable } from 'rxjs/internal/Observable'
export { Subject } from 'rxjs/internal/Subject'
export { map } from 'rxjs/internal/operators/map'
