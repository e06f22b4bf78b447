import { isIP } from 'node:net';
import {
  EnvMissingError,
  bool,
  cleanEnv,
  makeExactValidator,
  makeValidator,
  num,
  port,
  str,
  url,
  type ValidatorSpec,
} from 'envalid';

export { bool, makeExactValidator, num, port, str, url };
export type { ValidatorSpec };

/** Every missing or invalid variable, named in one message. */
export class ConfigError extends Error {
  readonly code = 'TWOFOLD_CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Longest delay a Node timer takes: beyond it setTimeout fires at once (every 1 ms for an interval). */
export const MAX_TIMER_MS = 2_147_483_647;

/** Integer milliseconds, from 1 to what a Node timer can wait. */
export const millis = makeValidator<number>((input) => {
  const value = Number(input);
  if (!Number.isInteger(value) || value < 1 || value > MAX_TIMER_MS)
    throw new Error(`must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${input}`);
  return value;
});

/**
 * A whole number within a range, e.g. `integer({ min: 0, max: 10 })({ default: 1 })`.
 * envalid's num() takes 1.5, -3 or an empty value (as 0), and a value the code cannot use
 * then fails at the first request instead of at start-up.
 */
export function integer(range: { min: number; max?: number }) {
  const { min, max } = range;
  const allowed = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
  return makeExactValidator<number>((input) => {
    const value = /^\s*[+-]?\d+\s*$/.test(input) ? Number(input) : NaN;
    if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max))
      throw new Error(`must be a whole number ${allowed}, got ${input}`);
    return value;
  });
}

/** An address to listen on: an IP literal (`::` or `0.0.0.0` for every interface) or a host name. */
export const listenHost = makeExactValidator<string>((input) => {
  const host = input.trim().replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host)) return host;
  throw new Error(`must be an IP address (:: or 0.0.0.0 for every interface) or a host name, got ${input}`);
});

/** Comma-separated host:port list. */
export const hostPorts = makeValidator<string[]>((input) => {
  const list = input
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0 || !list.every((hp) => /^[^\s:]+:\d{1,5}$/.test(hp))) {
    throw new Error('must be a comma-separated list of host:port');
  }
  return list;
});

/** A key ring: `id:base64key[,id:base64key…]`, each key 32 bytes (AES-256). */
export const keyRing = makeValidator<ReadonlyMap<string, Buffer>>((input) => {
  const ring = new Map<string, Buffer>();
  for (const entry of input
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf(':');
    const id = entry.slice(0, at);
    if (at < 1 || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error('each entry must be id:base64key');
    const key = Buffer.from(entry.slice(at + 1), 'base64');
    if (key.length !== 32) throw new Error(`key ${id} must decode to 32 bytes`);
    ring.set(id, key);
  }
  if (ring.size === 0) throw new Error('must hold at least one id:base64key');
  return ring;
});

/**
 * Validates the environment against a spec once, at boot. Unlike envalid's default
 * reporter (which exits), this throws a ConfigError naming every bad variable, so the
 * composition root decides how to stop and tests can assert on it.
 */
export function readEnv<S extends Record<string, ValidatorSpec<unknown>>>(
  spec: S,
  env: Record<string, string | undefined> = process.env,
) {
  return cleanEnv(env, spec, {
    reporter: ({ errors }) => {
      const names = Object.keys(errors);
      if (names.length === 0) return;
      const problems = names.sort().map((name) => {
        const err = errors[name];
        return err instanceof EnvMissingError
          ? `${name} is required but not set`
          : `${name}: ${err?.message ?? 'invalid'}`;
      });
      throw new ConfigError(problems);
    },
  });
}

/**
 * Runs a config loader at boot; on a ConfigError prints the one message naming every bad
 * variable and exits with EX_CONFIG (78), without a stack trace a person must read past.
 */
export function loadOrExit<T>(load: () => T, service: string): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}
