import tseslint from 'typescript-eslint';

/**
 * The layers (DESIGN.md §1): schemas/ at the bottom, lib/ above it, the components (producers,
 * processors, sinks) and the shipped simulators above lib, the CLI on top. An import that runs the
 * other way, between components, or from anything shipped into test/, fails the lint.
 */
const LAYERS = {
  schemas: ['lib', 'producers', 'processors', 'sinks', 'simulators', 'cli', 'test'],
  lib: ['producers', 'processors', 'sinks', 'simulators', 'cli', 'test'],
  producers: ['processors', 'sinks', 'simulators', 'cli', 'test'],
  processors: ['producers', 'sinks', 'simulators', 'cli', 'test'],
  sinks: ['producers', 'processors', 'simulators', 'cli', 'test'],
  simulators: ['producers', 'processors', 'sinks', 'cli', 'test'],
  cli: ['test'],
};

const layerRules = Object.entries(LAYERS).map(([layer, forbidden]) => ({
  files: [`${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((name) => ({
          regex: `^(\\.\\.?/)+(\\.\\./)*${name}/`,
          message: `${layer}/ may not import ${name}/ (layers: DESIGN.md §1)`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.local/', 'coverage/', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      'no-console': 'error',
    },
  },
  ...layerRules,
  { files: ['cli/**', 'test/**', 'bin/**'], rules: { 'no-console': 'off' } },
  {
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
