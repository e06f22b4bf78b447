import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeBase32, encodeBase32 } from './base32.js';
import { OtpInputError } from './errors.js';
import { generateSecret, parseImportedSecret } from './secret.js';
import {
  generateHotp,
  generateTotp,
  isWellFormedCode,
  parseTotpParameters,
  timeStepAt,
  verifyHotp,
  verifyTotp,
  verifyTotpKey,
  type TotpAlgorithm,
} from './totp.js';

const ascii = (seed: string) => encodeBase32(Buffer.from(seed, 'ascii'));

// RFC 6238 Appendix B: one seed per hash, each as long as the hash's output block needs.
const RFC6238_SEEDS: Record<TotpAlgorithm, string> = {
  SHA1: ascii('12345678901234567890'),
  SHA256: ascii('12345678901234567890123456789012'),
  SHA512: ascii('1234567890123456789012345678901234567890123456789012345678901234'),
};

const RFC6238_VECTORS: [number, TotpAlgorithm, string][] = [
  [59, 'SHA1', '94287082'],
  [59, 'SHA256', '46119246'],
  [59, 'SHA512', '90693936'],
  [1111111109, 'SHA1', '07081804'],
  [1111111109, 'SHA256', '68084774'],
  [1111111109, 'SHA512', '25091201'],
  [1111111111, 'SHA1', '14050471'],
  [1111111111, 'SHA256', '67062674'],
  [1111111111, 'SHA512', '99943326'],
  [1234567890, 'SHA1', '89005924'],
  [1234567890, 'SHA256', '91819424'],
  [1234567890, 'SHA512', '93441116'],
  [2000000000, 'SHA1', '69279037'],
  [2000000000, 'SHA256', '90698825'],
  [2000000000, 'SHA512', '38618901'],
  [20000000000, 'SHA1', '65353130'],
  [20000000000, 'SHA256', '77737706'],
  [20000000000, 'SHA512', '47863826'],
];

// RFC 4226 Appendix D: HOTP of "12345678901234567890" for counters 0..9.
const RFC4226_CODES = [
  '755224',
  '287082',
  '359152',
  '969429',
  '338314',
  '254676',
  '287922',
  '162583',
  '399871',
  '520489',
];
const RFC4226_SECRET = ascii('12345678901234567890');

describe('TOTP, RFC 6238 Appendix B', () => {
  it.each(RFC6238_VECTORS)('at %i s with %s gives %s', async (seconds, algorithm, code) => {
    const secret = RFC6238_SEEDS[algorithm];
    const now = seconds * 1000;
    expect(await generateTotp(secret, { algorithm, digits: 8, now })).toBe(code);
    expect(await verifyTotp(secret, code, { algorithm, digits: 8, now, window: 0 })).toEqual({
      valid: true,
      timeStep: Math.floor(seconds / 30),
      delta: 0,
    });
  });

  it.each(RFC6238_VECTORS)('from key bytes (verifyTotpKey): at %i s with %s', (seconds, algorithm, code) => {
    const key = decodeBase32(RFC6238_SEEDS[algorithm]);
    const now = seconds * 1000;
    const step = Math.floor(seconds / 30);
    expect(verifyTotpKey(key, code, { algorithm, digits: 8, now })).toEqual({
      valid: true,
      timeStep: step,
      delta: 0,
    });
    // A step later it is the previous step's code (inside the window), two steps later not.
    expect(verifyTotpKey(key, code, { algorithm, digits: 8, now: now + 30_000 })).toEqual({
      valid: true,
      timeStep: step,
      delta: -1,
    });
    expect(verifyTotpKey(key, code, { algorithm, digits: 8, now: now + 60_000 })).toEqual({
      valid: false,
      reason: 'bad_code',
    });
    expect(verifyTotpKey(key, code.slice(2), { algorithm, digits: 8, now })).toMatchObject({
      valid: false,
      reason: 'malformed_code',
    });
  });
});

describe('HOTP, RFC 4226 Appendix D', () => {
  it.each(RFC4226_CODES.map((code, counter) => [counter, code] as const))(
    'counter %i gives %s',
    async (counter, code) => {
      expect(await generateHotp(RFC4226_SECRET, counter)).toBe(code);
      expect(await verifyHotp(RFC4226_SECRET, code, counter)).toEqual({ valid: true, counter });
    },
  );

  it('finds a code ahead of the counter within the look-ahead, and not beyond', async () => {
    expect(await verifyHotp(RFC4226_SECRET, '969429', 1, { lookAhead: 2 })).toEqual({
      valid: true,
      counter: 3,
    });
    expect(await verifyHotp(RFC4226_SECRET, '969429', 0, { lookAhead: 2 })).toEqual({
      valid: false,
      reason: 'bad_code',
    });
    expect(await verifyHotp(RFC4226_SECRET, '287082', 2, { lookAhead: 2 })).toEqual({
      valid: false,
      reason: 'bad_code',
    });
  });
});

describe('verification window', () => {
  const secret = RFC6238_SEEDS.SHA1;
  // In the middle of a step, so that ±1 s of drift in the test cannot change the step.
  const now = (timeStepAt(Date.UTC(2026, 10, 28, 9, 0, 0)) * 30 + 15) * 1000;
  const step = timeStepAt(now);
  const codeAt = (offset: number) => generateTotp(secret, { now: now + offset * 30_000 });

  it.each([-1, 0, 1])('accepts the code of step %i and reports that step', async (offset) => {
    expect(await verifyTotp(secret, await codeAt(offset), { now })).toEqual({
      valid: true,
      timeStep: step + offset,
      delta: offset,
    });
  });

  it.each([-2, 2])('refuses the code of step %i with the default window', async (offset) => {
    expect(await verifyTotp(secret, await codeAt(offset), { now })).toEqual({
      valid: false,
      reason: 'bad_code',
    });
  });

  it('widens when configured: step ±2 with window 2, and only the current step with window 0', async () => {
    expect(await verifyTotp(secret, await codeAt(-2), { now, window: 2 })).toMatchObject({
      valid: true,
      delta: -2,
    });
    expect(await verifyTotp(secret, await codeAt(2), { now, window: 2 })).toMatchObject({
      valid: true,
      delta: 2,
    });
    expect(await verifyTotp(secret, await codeAt(1), { now, window: 0 })).toEqual({
      valid: false,
      reason: 'bad_code',
    });
  });

  it('holds at the exact edges of a step', async () => {
    const start = step * 30_000;
    const code = await generateTotp(secret, { now: start });
    expect(await verifyTotp(secret, code, { now: start + 29_999, window: 0 })).toMatchObject({
      timeStep: step,
    });
    expect(await verifyTotp(secret, code, { now: start + 30_000, window: 0 })).toMatchObject({
      valid: false,
    });
    expect(await verifyTotp(secret, code, { now: start - 30_000 })).toMatchObject({
      timeStep: step,
      delta: 1,
    });
    expect(await verifyTotp(secret, code, { now: start - 30_001 })).toMatchObject({ valid: false });
  });

  it('uses a configured period', async () => {
    const code = await generateTotp(secret, { now, period: 60 });
    expect(await verifyTotp(secret, code, { now, period: 60 })).toEqual({
      valid: true,
      timeStep: timeStepAt(now, 60),
      delta: 0,
    });
    expect(await verifyTotp(secret, code, { now: now + 120_000, period: 60 })).toMatchObject({
      valid: false,
    });
  });

  it('refuses a window it will not search', async () => {
    await expect(verifyTotp(secret, '123456', { window: -1 })).rejects.toThrow(OtpInputError);
    await expect(verifyTotp(secret, '123456', { window: 1.5 })).rejects.toThrow(OtpInputError);
  });
});

describe('malformed codes', () => {
  const secret = RFC6238_SEEDS.SHA1;
  it.each([
    ['12345', 6],
    ['1234567', 6],
    ['12345a', 6],
    [' 123456', 6],
    ['123 456', 6],
    ['-12345', 6],
    ['１２３４５６', 6], // full-width digits are digits to Unicode, not to us
    ['', 6],
    ['123456', 8],
    ['1234567e', 8],
  ] as const)('refuses %j for %i digits before any HMAC', async (code, digits) => {
    expect(isWellFormedCode(code, digits)).toBe(false);
    const result = await verifyTotp(secret, code, { digits });
    expect(result).toEqual({
      valid: false,
      reason: 'malformed_code',
      detail: `the code must be exactly ${digits} digits (0-9)`,
    });
    expect(await verifyHotp(secret, code, 0, { digits })).toMatchObject({ reason: 'malformed_code' });
  });

  it('accepts leading zeros', () => {
    expect(isWellFormedCode('000000', 6)).toBe(true);
  });
});

describe('parseTotpParameters', () => {
  it('fills the defaults', () => {
    expect(parseTotpParameters({})).toEqual({ algorithm: 'SHA1', digits: 6, period: 30 });
  });
  it.each(['sha256', 'SHA-256', 'Sha256'])('reads %s as SHA256', (algorithm) => {
    expect(parseTotpParameters({ algorithm }).algorithm).toBe('SHA256');
  });
  it.each([
    [{ algorithm: 'MD5' }, /SHA1, SHA256 or SHA512/],
    [{ algorithm: 'constructor' }, /SHA1, SHA256 or SHA512/],
    [{ digits: 7 }, /6 or 8/],
    [{ period: 0 }, /period/],
    [{ period: 30.5 }, /period/],
  ])('refuses %j', (input, message) => {
    expect(() => parseTotpParameters(input)).toThrow(message);
  });
});

// An independent implementation: OATH Toolkit's oathtool (Debian package oathtool).
const OATHTOOL = '/usr/bin/oathtool';

function oathtool(args: string[]): string {
  return execFileSync(OATHTOOL, args, { encoding: 'utf8' }).trim();
}

describe.skipIf(!existsSync(OATHTOOL))('cross-check with oathtool', () => {
  const cases: [TotpAlgorithm, 6 | 8, number][] = [
    ['SHA1', 6, 30],
    ['SHA256', 8, 30],
    ['SHA512', 8, 30],
    ['SHA1', 8, 60],
    ['SHA256', 6, 30],
  ];

  it.each(cases)(
    '%s, %i digits, %i s: oathtool codes verify, ours match it',
    async (algorithm, digits, period) => {
      const secret = generateSecret();
      for (const seconds of [59, 1111111109, 1700000000, Math.floor(Date.now() / 1000)]) {
        const stamp = new Date(seconds * 1000)
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' UTC');
        const theirs = oathtool([
          `--totp=${algorithm}`,
          '-b',
          '-d',
          String(digits),
          '-s',
          `${period}s`,
          '-N',
          stamp,
          secret,
        ]);
        const now = seconds * 1000;
        expect(await generateTotp(secret, { algorithm, digits, period, now })).toBe(theirs);
        expect(await verifyTotp(secret, theirs, { algorithm, digits, period, now })).toMatchObject({
          valid: true,
          timeStep: Math.floor(seconds / period),
        });
      }
    },
  );

  it('agrees with oathtool on HOTP counters', async () => {
    const secret = generateSecret();
    const theirs = oathtool(['--hotp', '-b', '-c', '1000', '-w', '2', secret]).split('\n');
    expect(theirs).toHaveLength(3);
    for (const [offset, code] of theirs.entries()) {
      expect(await generateHotp(secret, 1000 + offset)).toBe(code);
    }
  });

  it('agrees on an imported 8-digit SHA-256 key typed in groups, lower case, padded', async () => {
    const bytes = Buffer.from('an authenticator key of 26 bytes');
    const typed =
      encodeBase32(bytes)
        .toLowerCase()
        .replace(/(.{4})/g, '$1 ') + '======';
    const secret = parseImportedSecret(typed);
    const theirs = oathtool(['--totp=SHA256', '-b', '-d', '8', '-N', '2026-11-28 09:00:00 UTC', secret]);
    const now = Date.UTC(2026, 10, 28, 9);
    expect(await generateTotp(secret, { algorithm: 'SHA256', digits: 8, now })).toBe(theirs);
    expect(await verifyTotp(secret, theirs, { algorithm: 'SHA256', digits: 8, now })).toMatchObject({
      valid: true,
    });
  });
});
