// Benchmarks run in the same isolated worlds as the reliability tests.
export {
  deleteRedisPrefix,
  isolatedWorld as benchWorld,
  type WorldOptions as BenchWorldOptions,
} from '../../test/reliability/support/world.js';
