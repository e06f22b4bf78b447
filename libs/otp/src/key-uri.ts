import QRCode from 'qrcode';
import { DEFAULT_TOTP_PARAMETERS, type TotpParameters } from './totp.js';

/** Issuer shown in authenticator apps unless a deployment names itself otherwise. */
export const DEFAULT_ISSUER = 'twofold';

export interface KeyUriInput extends Partial<TotpParameters> {
  /** Unpadded base32 secret. */
  readonly secret: string;
  /** Account name shown in the authenticator, normally the normalized username. */
  readonly accountName: string;
  readonly issuer?: string;
}

/**
 * The otpauth Key URI of a TOTP secret, every parameter spelled out so that apps which
 * ignore defaults agree: `otpauth://totp/twofold:alice?secret=…&issuer=twofold&algorithm=SHA1&digits=6&period=30`.
 * Issuer and account name are percent-encoded (a space is `%20`, a colon `%3A`).
 */
export function buildKeyUri(input: KeyUriInput): string {
  const issuer = input.issuer ?? DEFAULT_ISSUER;
  const algorithm = input.algorithm ?? DEFAULT_TOTP_PARAMETERS.algorithm;
  const digits = input.digits ?? DEFAULT_TOTP_PARAMETERS.digits;
  const period = input.period ?? DEFAULT_TOTP_PARAMETERS.period;
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(input.accountName)}`;
  const query = [
    `secret=${input.secret}`,
    `issuer=${encodeURIComponent(issuer)}`,
    `algorithm=${algorithm}`,
    `digits=${digits}`,
    `period=${period}`,
  ].join('&');
  return `otpauth://totp/${label}?${query}`;
}

/** The Key URI as a QR code in a standalone `<svg>` string, for the hosted enrollment page. */
export async function renderQrSvg(keyUri: string): Promise<string> {
  return QRCode.toString(keyUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** The Key URI as a QR code drawn with block characters and ANSI colours, for the CLI. */
export async function renderQrTerminal(keyUri: string): Promise<string> {
  return QRCode.toString(keyUri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}
