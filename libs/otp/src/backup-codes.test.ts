import { describe, expect, it } from 'vitest';
import {
  BACKUP_CODE_COUNT,
  findBackupCodeIndex,
  generateBackupCodes,
  hashBackupCode,
  hashBackupCodes,
  normalizeBackupCode,
} from './backup-codes.js';

describe('generateBackupCodes', () => {
  it('makes 10 distinct xxxxx-xxxxx codes from the unambiguous alphabet', () => {
    const codes = generateBackupCodes();
    expect(codes).toHaveLength(BACKUP_CODE_COUNT);
    expect(new Set(codes).size).toBe(BACKUP_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
  });

  it('uses every symbol of the alphabet (no bias hiding a smaller one)', () => {
    const seen = new Set(generateBackupCodes(2000).join('').replace(/-/g, ''));
    expect(seen.size).toBe(32);
  });
});

describe('normalizeBackupCode', () => {
  it.each([
    ['abcde-fghjk', 'abcdefghjk'],
    ['ABCDE-FGHJK', 'abcdefghjk'],
    ['  abcde fghjk ', 'abcdefghjk'],
    ['abcdefghjk', 'abcdefghjk'],
    ['a-b-c-d-e-f-g-h-j-k', 'abcdefghjk'],
    ['0O0o0-1iIlL', '0000011111'],
  ])('reads %j as %s', (input, expected) => {
    expect(normalizeBackupCode(input)).toBe(expected);
  });

  it.each(['', 'abcde-fghj', 'abcde-fghjkm', 'abcde-fghju', 'abcde_fghjk', '123456'])(
    'refuses %j',
    (input) => {
      expect(normalizeBackupCode(input)).toBeNull();
    },
  );
});

describe('backup code hashes', () => {
  it('are self-describing scrypt PHC strings with a salt per code', async () => {
    const [code] = generateBackupCodes(1) as [string];
    const first = await hashBackupCode(code);
    const second = await hashBackupCode(code);
    expect(first).toMatch(/^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(first).not.toBe(second);
    expect(first).not.toContain(code);
  });

  it('find the index of the matching code however it is typed, and -1 otherwise', async () => {
    const codes = generateBackupCodes();
    const hashes = await hashBackupCodes(codes);
    const seventh = codes[6] ?? '';
    expect(await findBackupCodeIndex(seventh, hashes)).toBe(6);
    expect(await findBackupCodeIndex(` ${seventh.toUpperCase().replace('-', ' ')} `, hashes)).toBe(6);
    expect(await findBackupCodeIndex(generateBackupCodes(1)[0] ?? '', hashes)).toBe(-1);
    expect(await findBackupCodeIndex('not a code', hashes)).toBe(-1);
    expect(await findBackupCodeIndex(codes[0] ?? '', [])).toBe(-1);
  }, 20_000);

  it('match a code shown with o/i/l where the alphabet has 0/1', async () => {
    const hash = await hashBackupCode('0a1b0-c1d0e');
    expect(await findBackupCodeIndex('OAlBo-CiDOE', [hash])).toBe(0);
  });

  it('skip a damaged or foreign stored hash instead of failing', async () => {
    const code = 'abcde-fghjk';
    const good = await hashBackupCode(code);
    const damaged = [
      'plain',
      '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA',
      good.replace('ln=14', 'ln=30'),
      good.replace(/\$[^$]+$/, '$AAAA'),
    ];
    expect(await findBackupCodeIndex(code, [...damaged, good])).toBe(damaged.length);
  });

  it('refuse to hash something that is not a backup code', async () => {
    await expect(hashBackupCode('123456')).rejects.toThrow(/not a backup code/);
  });
});
