// Module boundaries are the architecture: services share only libs, never each other's code.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/dist/**', '**/node_modules/**', 'libs/contracts/src/generated/**', '.nx/**', '.tracegate/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:lib'] },
            { sourceTag: 'type:test-lib', onlyDependOnLibsWithTags: ['type:lib', 'type:test-lib'] },
            { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:lib', 'type:test-lib'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:lib', 'type:service'] },
            { sourceTag: 'type:test', onlyDependOnLibsWithTags: ['type:lib', 'type:test-lib', 'type:app'] },
            // A service may depend on shared libs and on nothing of another service's scope.
            { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:shared', 'scope:gateway'] },
            { sourceTag: 'scope:policy', onlyDependOnLibsWithTags: ['scope:shared', 'scope:policy'] },
            { sourceTag: 'scope:masking', onlyDependOnLibsWithTags: ['scope:shared', 'scope:masking'] },
            { sourceTag: 'scope:broker', onlyDependOnLibsWithTags: ['scope:shared', 'scope:broker'] },
            { sourceTag: 'scope:approvals', onlyDependOnLibsWithTags: ['scope:shared', 'scope:approvals'] },
            { sourceTag: 'scope:audit', onlyDependOnLibsWithTags: ['scope:shared', 'scope:audit'] },
          ],
        },
      ],
    },
  },
];
