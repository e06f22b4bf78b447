import { NodeCryptoPlugin } from '@otplib/plugin-crypto-node';
import { createGuardrails, generate, verify, verifySync, type HashAlgorithm } from 'otplib';
import { decodeBase32 } from './base32.js';
import { OtpInputError } from './errors.js';

/** Hash of the HMAC, spelled as the Key URI `algorithm` parameter spells it. */
export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';
/** Length of a code. */
export type TotpDigits = 6 | 8;

/** What an authenticator and the server must agree on besides the secret. */
export interface TotpParameters {
  readonly algorithm: TotpAlgorithm;
  readonly digits: TotpDigits;
  /** Seconds per time step. */
  readonly period: number;
}

/** Google Authenticator's defaults, which CONTRACT.md makes ours. */
export const DEFAULT_TOTP_PARAMETERS: TotpParameters = Object.freeze({
  algorithm: 'SHA1',
  digits: 6,
  period: 30,
});

/** Steps accepted either side of the current one unless the caller says otherwise. */
export const DEFAULT_TOTP_WINDOW = 1;

const MAX_WINDOW = 10;
const MIN_PERIOD = 1;
const MAX_PERIOD = 3600;

const HASH: Record<TotpAlgorithm, HashAlgorithm> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

// One OpenSSL-backed plugin for every call: otplib's functional API defaults to pure JS.
const nodeCrypto = new NodeCryptoPlugin();
// otplib builds its default guardrails on every call unless given some: one for all.
const guardrails = createGuardrails();

/**
 * Checks parameters that arrive from outside (enrollment and import requests) and fills
 * the defaults. Accepts `sha256`, `SHA-256` and the like. Throws {@link OtpInputError}.
 */
export function parseTotpParameters(input: {
  algorithm?: string | undefined;
  digits?: number | undefined;
  period?: number | undefined;
}): TotpParameters {
  const algorithm =
    input.algorithm === undefined
      ? DEFAULT_TOTP_PARAMETERS.algorithm
      : (input.algorithm.toUpperCase().replace('-', '') as TotpAlgorithm);
  if (!Object.hasOwn(HASH, algorithm)) throw new OtpInputError('algorithm must be SHA1, SHA256 or SHA512');
  const digits = input.digits ?? DEFAULT_TOTP_PARAMETERS.digits;
  if (digits !== 6 && digits !== 8) throw new OtpInputError('digits must be 6 or 8');
  const period = input.period ?? DEFAULT_TOTP_PARAMETERS.period;
  if (!Number.isInteger(period) || period < MIN_PERIOD || period > MAX_PERIOD) {
    throw new OtpInputError(`period must be a whole number of seconds from ${MIN_PERIOD} to ${MAX_PERIOD}`);
  }
  return { algorithm, digits, period };
}

/** The RFC 6238 time step (counter) that `nowMs` falls in. */
export function timeStepAt(nowMs: number, period: number = DEFAULT_TOTP_PARAMETERS.period): number {
  return Math.floor(Math.floor(nowMs / 1000) / period);
}

/** True when `code` is exactly `digits` ASCII digits: no spaces, signs or other numerals. */
export function isWellFormedCode(code: string, digits: TotpDigits): boolean {
  return code.length === digits && /^[0-9]+$/.test(code);
}

/** Why a code was refused before any HMAC was computed, or after none matched. */
export type CodeRejection =
  /** Not exactly `digits` ASCII digits: the caller answers 4xx with `detail`. */
  | { readonly valid: false; readonly reason: 'malformed_code'; readonly detail: string }
  /** Well formed but matches no step in the window. */
  | { readonly valid: false; readonly reason: 'bad_code' };

/**
 * Outcome of {@link verifyTotp}. On success `timeStep` is the step that matched: the
 * replay guard accepts it only if it is after the last accepted step (see `isStepAfter`).
 */
export type TotpVerification =
  | {
      readonly valid: true;
      readonly timeStep: number;
      /** matched step minus current step */ readonly delta: number;
    }
  | CodeRejection;

/** Outcome of {@link verifyHotp}; on success `counter` is the counter that matched. */
export type HotpVerification = { readonly valid: true; readonly counter: number } | CodeRejection;

export interface TotpOptions extends Partial<TotpParameters> {
  /** Clock, in milliseconds since the epoch (default `Date.now()`). */
  readonly now?: number;
}

export interface TotpVerifyOptions extends TotpOptions {
  /** Steps accepted before and after the current one (default 1). */
  readonly window?: number;
}

/** The TOTP code of a base32 secret at `options.now` (RFC 6238). */
export async function generateTotp(secret: string, options: TotpOptions = {}): Promise<string> {
  const params = parseTotpParameters(options);
  return generate({
    strategy: 'totp',
    secret: decodeBase32(secret),
    algorithm: HASH[params.algorithm],
    digits: params.digits,
    period: params.period,
    epoch: epochSeconds(options.now),
    crypto: nodeCrypto,
  });
}

/**
 * Verifies a TOTP code against every step in `now ± window` steps. Codes are compared in
 * constant time (node's `timingSafeEqual`). Does not know about replays: the caller passes
 * the returned `timeStep` through its replay guard before accepting the login.
 */
export async function verifyTotp(
  secret: string,
  code: string,
  options: TotpVerifyOptions = {},
): Promise<TotpVerification> {
  return verifyTotpKey(decodeBase32(secret), code, options);
}

/**
 * {@link verifyTotp} for a secret already decoded from base32 (a verifier that keeps the
 * key bytes of a user between codes), synchronous: the HMACs are node:crypto's, so there
 * is nothing to wait for. Same checks and result.
 */
export function verifyTotpKey(
  key: Uint8Array,
  code: string,
  options: TotpVerifyOptions = {},
): TotpVerification {
  const params = parseTotpParameters(options);
  const window = options.window ?? DEFAULT_TOTP_WINDOW;
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new OtpInputError(`window must be a whole number of steps from 0 to ${MAX_WINDOW}`);
  }
  const rejection = rejectMalformed(code, params.digits);
  if (rejection) return rejection;
  const result = verifySync({
    strategy: 'totp',
    secret: key,
    token: code,
    algorithm: HASH[params.algorithm],
    digits: params.digits,
    period: params.period,
    epoch: epochSeconds(options.now),
    // In seconds: window·period either side covers exactly `window` whole steps.
    epochTolerance: window * params.period,
    crypto: nodeCrypto,
    guardrails,
  });
  if (!result.valid || !('timeStep' in result)) return { valid: false, reason: 'bad_code' };
  return { valid: true, timeStep: result.timeStep, delta: result.delta };
}

/** The HOTP code of a base32 secret for `counter` (RFC 4226). */
export async function generateHotp(
  secret: string,
  counter: number,
  options: Partial<Omit<TotpParameters, 'period'>> = {},
): Promise<string> {
  const params = parseTotpParameters(options);
  return generate({
    strategy: 'hotp',
    secret: decodeBase32(secret),
    counter,
    algorithm: HASH[params.algorithm],
    digits: params.digits,
    crypto: nodeCrypto,
  });
}

/**
 * Verifies an HOTP code for `counter` up to `lookAhead` counters ahead (RFC 4226 §7.4),
 * in constant time per candidate. On success the caller stores `counter + 1`.
 */
export async function verifyHotp(
  secret: string,
  code: string,
  counter: number,
  options: Partial<Omit<TotpParameters, 'period'>> & { readonly lookAhead?: number } = {},
): Promise<HotpVerification> {
  const params = parseTotpParameters(options);
  const rejection = rejectMalformed(code, params.digits);
  if (rejection) return rejection;
  const result = await verify({
    strategy: 'hotp',
    secret: decodeBase32(secret),
    token: code,
    counter,
    counterTolerance: [0, options.lookAhead ?? 0],
    algorithm: HASH[params.algorithm],
    digits: params.digits,
    crypto: nodeCrypto,
  });
  return result.valid
    ? { valid: true, counter: counter + result.delta }
    : { valid: false, reason: 'bad_code' };
}

function rejectMalformed(code: string, digits: TotpDigits): CodeRejection | undefined {
  if (isWellFormedCode(code, digits)) return undefined;
  return {
    valid: false,
    reason: 'malformed_code',
    detail: `the code must be exactly ${digits} digits (0-9)`,
  };
}

function epochSeconds(nowMs: number | undefined): number {
  return Math.floor((nowMs ?? Date.now()) / 1000);
}
