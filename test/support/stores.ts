// An isolated world (its own schema, topics and Redis prefix) with a Redis state client and a
// Postgres pool on it, for tests that drive library code against the real stores.
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { createPool, type Pool } from '@twofold/store';
import { isolated, type Isolated } from './stack.js';

export interface WorldWithStores {
  world: Isolated;
  redis: Redis;
  pool: Pool;
  cleanup(): Promise<void>;
}

export async function isolatedWithStores(name: string): Promise<WorldWithStores> {
  const world = await isolated(name, { database: true });
  const redis = createRedis(world.config.redis.url, 'state');
  await waitForRedis(redis);
  const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  return {
    world,
    redis,
    pool,
    async cleanup() {
      await redis.quit();
      await pool.end();
      await world.cleanup();
    },
  };
}
