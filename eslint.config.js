// `npm run lint` (run by .ci/run): typescript-eslint's recommended rules, without the purely
// stylistic ones, plus the few that catch real mistakes in this tree. Not type-aware: rules that
// need the type checker (no-floating-promises …) would make lint as slow as tsc, which CI already
// runs (`npm run typecheck`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'packages/*/dist/', '.build-test-*/', '.conformance/', 'bench/results/', 'data/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      // Node's globals, for the plain JavaScript files (TypeScript files are checked by tsc).
      globals: Object.fromEntries(
        ['process', 'console', 'URL', 'Buffer', 'fetch', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'structuredClone', 'TextEncoder', 'TextDecoder', 'AbortController'].map((name) => [name, 'readonly']),
      ),
    },
    rules: {
      // Type-only imports vanish from the output (verbatimModuleSyntax relies on it): a value import
      // of a type would load a module for nothing. `import('…')` in a type annotation is fine.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Stylistic: `let x!: T` assigned once after the closure that reads it is the clearer form.
      'prefer-const': 'off',
      // Tests and benchmarks poke at raw wire shapes; `any` is checked where input is untrusted (below).
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['src/**', 'packages/*/src/**', 'scripts/**'],
    rules: {
      // Untrusted input is parsed into types at the edge (STYLE.md): `any` would let it through unparsed.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
);
