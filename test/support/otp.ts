// Codes from an independent implementation: oathtool (Debian), not the code under test.
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TotpOptions {
  /** Unix time of the code (default: now). */
  atSeconds?: number;
  algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
  digits?: 6 | 8;
  period?: number;
}

export function oathtoolTotp(secret: string, options: TotpOptions = {}): string {
  const at = options.atSeconds ?? Math.floor(Date.now() / 1000);
  const args = [
    `--totp=${(options.algorithm ?? 'SHA1').toLowerCase()}`,
    '-d',
    String(options.digits ?? 6),
    '-s',
    `${options.period ?? 30}s`,
    '-b',
    secret,
    `--now=@${at}`,
  ];
  return execFileSync('oathtool', args, { encoding: 'utf8' }).trim();
}

/** The base32 secret inside an otpauth:// URI. */
export function secretOf(otpauthUri: string): string {
  const secret = new URL(otpauthUri).searchParams.get('secret');
  if (!secret) throw new Error(`no secret in ${otpauthUri}`);
  return secret;
}

/**
 * The code of the step before the current one (what a user types as the step turns; tests
 * use it so a later current code is not a replay). The server takes it only until the
 * current step ends (a window of ±1 step), so near the end of a step this waits for the
 * next one first: computed in a step's last moments, it was refused by the time it arrived.
 */
export async function previousStepCode(
  secret: string,
  options: Omit<TotpOptions, 'atSeconds'> = {},
): Promise<string> {
  const period = options.period ?? 30;
  const leftMs = period * 1000 - (Date.now() % (period * 1000));
  if (leftMs < 3000) await sleep(leftMs + 50);
  return oathtoolTotp(secret, { ...options, atSeconds: Math.floor(Date.now() / 1000) - period });
}
