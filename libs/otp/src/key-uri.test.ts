import { describe, expect, it } from 'vitest';
import { buildKeyUri, renderQrSvg, renderQrTerminal } from './key-uri.js';

const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

describe('buildKeyUri', () => {
  it('spells out every parameter, defaults included', () => {
    expect(buildKeyUri({ secret, accountName: 'alice' })).toBe(
      `otpauth://totp/twofold:alice?secret=${secret}&issuer=twofold&algorithm=SHA1&digits=6&period=30`,
    );
  });

  it('carries the parameters of an 8-digit SHA-256 secret', () => {
    expect(buildKeyUri({ secret, accountName: 'bob', algorithm: 'SHA256', digits: 8, period: 60 })).toBe(
      `otpauth://totp/twofold:bob?secret=${secret}&issuer=twofold&algorithm=SHA256&digits=8&period=60`,
    );
  });

  it('percent-encodes issuer and account name, spaces as %20', () => {
    const uri = buildKeyUri({ secret, accountName: 'alice@example.com', issuer: 'ACME Co: SSO' });
    expect(uri).toBe(
      `otpauth://totp/ACME%20Co%3A%20SSO:alice%40example.com?secret=${secret}&issuer=ACME%20Co%3A%20SSO&algorithm=SHA1&digits=6&period=30`,
    );
    const parsed = new URL(uri);
    expect(parsed.searchParams.get('issuer')).toBe('ACME Co: SSO');
    expect(decodeURIComponent(parsed.pathname.split(':')[1] ?? '')).toBe('alice@example.com');
  });
});

describe('QR code', () => {
  const uri = buildKeyUri({ secret, accountName: 'alice' });

  it('renders as a standalone SVG', async () => {
    const svg = await renderQrSvg(uri);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('renders for a terminal', async () => {
    const text = await renderQrTerminal(uri);
    expect(text.split('\n').length).toBeGreaterThan(10);
    expect(text).toMatch(/[▀▄█]/);
  });
});
