/**
 * TOTP and HOTP (RFC 6238 / 4226, otplib on node:crypto), secrets and their encryption at
 * rest, the otpauth Key URI and its QR code, backup codes, and the replay rule.
 */
export * from './errors.js';
export * from './base32.js';
export * from './totp.js';
export * from './secret.js';
export * from './key-uri.js';
export * from './secret-encryption.js';
export * from './backup-codes.js';
export * from './replay-guard.js';
