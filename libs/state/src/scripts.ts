import { createHash } from 'node:crypto';
import type { Redis } from '@twofold/redis';

const defined = new WeakMap<Redis, Set<string>>();
const digests = new Map<string, string>();

/** A Lua script to define as a command: its text, and how many of its arguments are keys (else given per call). */
export type ScriptDefinition = string | { lua: string; numberOfKeys: number };

/** Scripts defined by {@link defineScripts}, as the client (or a pipeline) calls them. */
export type ScriptCommands<Name extends string> = Record<
  Name,
  (...args: (string | number)[]) => Promise<unknown>
>;
/**
 * A pipeline of a client the scripts are defined on (ioredis's types know no custom
 * command); in a pipeline a script queues its call, its reply comes with exec().
 */
export type ScriptPipeline<Name extends string> = ReturnType<Redis['pipeline']> &
  Record<Name, (...args: (string | number)[]) => unknown>;

/**
 * Defines Lua scripts as commands on a client (ioredis `defineCommand`: EVALSHA, the text
 * sent once on NOSCRIPT; callable on the client and in its pipelines), once per client and
 * name. On an auto-pipelined client, createRedis sends these commands on their own (see
 * @twofold/redis); {@link runScript} suits those hot paths better.
 */
export function defineScripts<Name extends string>(
  redis: Redis,
  scripts: Readonly<Record<Name, ScriptDefinition>>,
): Redis & ScriptCommands<Name> {
  let names = defined.get(redis);
  if (!names) defined.set(redis, (names = new Set()));
  for (const [name, script] of Object.entries<ScriptDefinition>(scripts)) {
    if (names.has(name)) continue;
    redis.defineCommand(name, typeof script === 'string' ? { lua: script } : script);
    names.add(name);
  }
  return redis as Redis & ScriptCommands<Name>;
}

/** SHA-1 of a script, as EVALSHA names it. */
function digestOf(lua: string): string {
  let sha = digests.get(lua);
  if (!sha) digests.set(lua, (sha = createHash('sha1').update(lua).digest('hex')));
  return sha;
}

/**
 * Runs a Lua script by its SHA (EVALSHA; EVAL once when Redis does not know it yet, which
 * also caches it there) so hot paths do not resend the script text on every call.
 *
 * Builtin commands rather than ioredis `defineCommand`: a command defined while an
 * auto-pipeline is pending is missing from that pipeline, and ioredis 5.11 then crashes the
 * process ("results[i] is not iterable"). EVALSHA is safe on every client, auto-pipelined
 * or not. `name` says which script failed.
 */
export async function runScript(
  redis: Redis,
  name: string,
  lua: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(digestOf(lua), keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw withScriptName(err, name);
    return redis.eval(lua, keys.length, ...keys, ...args).catch((e: unknown) => {
      throw withScriptName(e, name);
    });
  }
}

function withScriptName(err: unknown, name: string): unknown {
  if (err instanceof Error && !err.message.startsWith(`${name}: `)) err.message = `${name}: ${err.message}`;
  return err;
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
  defineScripts(redis, { [pipelined]: lua });
  const pipeline = redis.pipeline() as ScriptPipeline<string>;
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
