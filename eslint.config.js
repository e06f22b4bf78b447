// Lint rules shared by every workspace. Type-aware rules catch floating promises,
// which in a Kafka consumer mean a commit before the effect.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.twofold/**', '.cache/**', 'helm/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts', 'deploy/local/*.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          paths: ['kafkajs', 'pg', 'ioredis', 'bullmq'].map((name) => ({
            name,
            message: `Reach ${name} through its one door in libs/ (kafka, store, redis).`,
          })),
        },
      ],
    },
  },
  { files: ['libs/kafka/**'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['libs/store/**'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['libs/redis/**'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['**/*.{js,mjs}'], languageOptions: { globals: globals.node } },
);
