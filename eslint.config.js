// Module boundaries are the architecture: services share only libs, never each other's code.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

const scopes = ['gateway', 'policy', 'masking', 'broker', 'approvals', 'audit'];

/** Production code: libs stay independent of tests; a service reaches only shared libs. */
function boundaries({ testCode }) {
  const testLib = testCode ? ['type:test-lib'] : [];
  return [
    'error',
    {
      enforceBuildableLibDependency: false,
      allow: [],
      depConstraints: [
        { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib', ...testLib] },
        { sourceTag: 'type:test-lib', onlyDependOnLibsWithTags: ['type:lib', 'type:test-lib'] },
        { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:lib', ...testLib] },
        { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib', 'type:service', ...testLib] },
        { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:lib', 'type:test-lib', 'type:service', 'type:app'] },
        // A service may depend on shared libs and on nothing of another service's scope.
        ...scopes.map((scope) => ({ sourceTag: `scope:${scope}`, onlyDependOnLibsWithTags: ['scope:shared', `scope:${scope}`] })),
      ],
    },
  ];
}

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', 'libs/contracts/src/generated/**', '.nx/**', '.tracegate/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': boundaries({ testCode: false }),
    },
  },
  {
    // Tests (and the shared contract suites they run) may use the harness that starts real components.
    files: ['**/*.spec.ts', '**/*.contract.ts'],
    rules: { '@nx/enforce-module-boundaries': boundaries({ testCode: true }) },
  },
];
