/**
 * Schema validation as core's public API: {@link compileSchema} (Ajv in Node, an eval-free
 * interpreter in the browser build), {@link ajvIssues} and {@link formatIssues}.
 */
export * from './validator.js'
export * from './issues.js'
export * from './engine.js'
