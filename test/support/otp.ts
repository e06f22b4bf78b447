// Codes from an independent implementation: oathtool (Debian), not the code under test.
import { execFileSync } from 'node:child_process';

export function oathtoolTotp(
  secret: string,
  options: {
    atSeconds?: number;
    algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
    digits?: 6 | 8;
    period?: number;
  } = {},
): string {
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
