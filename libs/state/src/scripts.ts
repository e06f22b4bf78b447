import type { Redis } from '@twofold/redis';

const defined = new WeakMap<Redis, Set<string>>();

/**
 * Runs a Lua script by its SHA (EVALSHA, loading it on first use per client) so hot paths
 * do not resend the script text on every call.
 */
export async function runScript(
  redis: Redis,
  name: string,
  lua: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  let names = defined.get(redis);
  if (!names) defined.set(redis, (names = new Set()));
  if (!names.has(name)) {
    redis.defineCommand(name, { lua });
    names.add(name);
  }
  const command = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[
    name
  ]!;
  return command.call(redis, keys.length, ...keys, ...args);
}
