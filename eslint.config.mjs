// @ts-check
// One flat config for the monorepo: ESLint's recommended rules and typescript-eslint's
// type-aware recommended set, minus the rules the code deliberately does not follow (each
// switched off below with the reason). TypeScript files inside a package's tsconfig are linted
// with type information (projectService finds the nearest tsconfig.json); scripts, benches and
// plain JavaScript are linted without it.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

/** TypeScript files that no tsconfig.json includes: linted without type information. */
const untypedTs = [
  'bench/**/*.ts',
  'scripts/**/*.ts',
  'scripts/**/*.mts',
  'packages/**/scripts/**/*.ts',
  'packages/**/bench/**/*.ts',
  'vitest.config.ts',
]

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.turbo/**',
      'coverage/**',
      'docs/api/**',
      '**/.measure.bundle.mjs',
      // GPU-host bundles (made by ../shared/gpu/prepare.sh, git-ignored) and other local output
      '.gpu/**',
      '.ep/**',
      '.gl/**',
      // Hostile-input fixtures: files made to be refused, not code we run.
      'test/corpus/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Parsed JSON, safetensors headers and plugin modules arrive as `any` and are checked by
      // hand or by ajv where they enter; the no-unsafe-* family would flag every such read.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Assertions the checker finds redundant are often kept as documentation of a shape.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Messages interpolate numbers, ids and unknown values on purpose.
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // Interfaces (Backend.forward, plugin hooks) are async; synchronous implementations are fine.
      '@typescript-eslint/require-await': 'off',
      // Stored failures (unknown values caught elsewhere) are rethrown as they came.
      '@typescript-eslint/only-throw-error': 'off',
      // Plugin hooks and module namespaces are plain objects of functions that never use `this`.
      '@typescript-eslint/unbound-method': 'off',
      // Unused names: a leading underscore marks one kept on purpose (a parameter a hook must
      // accept, a field taken out of an object by destructuring).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // House rule (STYLE 6.5): never tsyringe's global container through decorators.
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'tsyringe',
              importNames: ['singleton', 'registry', 'autoInjectable'],
              message: 'These register on the global container; use @injectable() and createMoeContainer().',
            },
          ],
        },
      ],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Tests read JSON reports and documents whose shape the assertions themselves check.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.{js,mjs,cjs}', ...untypedTs],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },
)
