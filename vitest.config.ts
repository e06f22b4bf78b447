import { defineConfig } from 'vitest/config';

// Two kinds of tests: pure unit tests beside the code, and integration tests in test/
// against the real stack (files run one at a time: they share one broker).
export default defineConfig({
  resolve: { conditions: ['twofold-source'] },
  ssr: { resolve: { conditions: ['twofold-source'], externalConditions: ['twofold-source'] } },
  test: {
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['libs/**/src/**/*.test.ts', 'services/**/src/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'helm',
          include: ['test/helm/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Hostile input (fast-check) at the real api and consumers: part of `npm test`.
        extends: true,
        test: {
          name: 'property',
          include: ['test/property/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
      // Faults under load (kill -9, broker restart, Postgres and Redis stopped, SIGTERM): minutes
      // per file, so not in `npm test`; `npm run test:reliability` runs them.
      ...(process.env['TWOFOLD_RELIABILITY']
        ? [
            {
              extends: true as const,
              test: {
                name: 'reliability',
                include: ['test/reliability/**/*.test.ts'],
                fileParallelism: false,
                testTimeout: 900_000,
                hookTimeout: 300_000,
              },
            },
          ]
        : []),
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
