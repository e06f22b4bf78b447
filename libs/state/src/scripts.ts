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

/**
 * Runs a Lua script once per call in one pipeline (one round trip for a batch). Each entry
 * is the script's reply, or the Error of that call (a failed round trip fails every entry).
 */
export async function runScriptMany(
  redis: Redis,
  name: string,
  lua: string,
  calls: readonly { keys: readonly string[]; args: readonly (string | number)[] }[],
): Promise<unknown[]> {
  if (calls.length === 0) return [];
  const pipelined = `${name}Pipelined`;
  let names = defined.get(redis);
  if (!names) defined.set(redis, (names = new Set()));
  if (!names.has(pipelined)) {
    redis.defineCommand(pipelined, { lua });
    names.add(pipelined);
  }
  const pipeline = redis.pipeline() as unknown as Record<string, (...a: (string | number)[]) => unknown> & {
    exec(): Promise<[Error | null, unknown][] | null>;
  };
  for (const { keys, args } of calls) pipeline[pipelined]!(keys.length, ...keys, ...args);
  let results: [Error | null, unknown][];
  try {
    results = (await pipeline.exec()) ?? [];
  } catch (err) {
    return calls.map(() => (err instanceof Error ? err : new Error(String(err))));
  }
  return calls.map((_, i) => {
    const reply = results[i];
    if (!reply) return new Error(`no reply from Redis for ${name}`);
    return reply[0] ?? reply[1];
  });
}
