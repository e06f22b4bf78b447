import { createHash } from 'node:crypto';

/** Usernames are one identity whatever their case, width or padding: NFKC, trimmed, lower-cased. */
export function normalizeUsername(raw: string): string {
  return raw.normalize('NFKC').trim().toLowerCase();
}

/** The `session` of every event: lowercase hex SHA-256 of the app's raw SSO token. */
export function hashSessionToken(rawToken: string): string {
  return createHash('sha256').update(rawToken, 'utf8').digest('hex');
}

export const APP_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';
const appIdRegex = new RegExp(APP_ID_PATTERN);
export function isAppId(value: string): boolean {
  return appIdRegex.test(value);
}

export const SESSION_HASH_PATTERN = '^[0-9a-f]{64}$';
export const MAX_USERNAME_LENGTH = 256;
