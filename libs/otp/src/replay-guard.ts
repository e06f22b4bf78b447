import { DEFAULT_TOTP_PARAMETERS, DEFAULT_TOTP_WINDOW } from './totp.js';

/**
 * The replay rule: a time step is accepted only if it comes after the last accepted one
 * for the user (null: none yet). Refusing equal steps stops reuse of one code; refusing
 * older ones stops an earlier code still inside the window from being used after a newer.
 */
export function isStepAfter(lastAcceptedStep: number | null, step: number): boolean {
  return lastAcceptedStep === null || step > lastAcceptedStep;
}

/**
 * Redis script that applies {@link isStepAfter} atomically, so that two apps or replicas
 * submitting the same code at the same instant see exactly one success.
 *
 * - `KEYS[1]`: the user's replay key (the caller hash-tags it per user for Redis Cluster)
 * - `ARGV[1]`: the matched time step (integer)
 * - `ARGV[2]`: seconds the key lives (see {@link replayGuardTtlSeconds})
 *
 * Sets the key to the step only if it is absent or holds a smaller step. Returns 1 when
 * the step is accepted, 0 when it was replayed or is older than the last accepted one.
 */
export const REPLAY_GUARD_SCRIPT = `
local step = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
if step == nil or ttl == nil or ttl < 1 then
  return redis.error_reply('replay guard: ARGV[1] must be a step and ARGV[2] a ttl of at least 1 second')
end
local last = tonumber(redis.call('GET', KEYS[1]))
if last ~= nil and last >= step then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', math.floor(ttl))
return 1
`.trim();

/**
 * How long a replay key must outlive the acceptance it records: a code for step S is
 * accepted from step S − window and stays valid until the end of step S + window, so the
 * key must hold for 2·window + 1 steps; one step more absorbs clock skew between replicas.
 */
export function replayGuardTtlSeconds(
  period: number = DEFAULT_TOTP_PARAMETERS.period,
  window: number = DEFAULT_TOTP_WINDOW,
): number {
  return period * (2 * window + 2);
}
