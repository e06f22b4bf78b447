/** Why an operation was refused; the api maps each code to an HTTP status. */
export type VerificationErrorCode = 'malformed' | 'not_found' | 'conflict' | 'unavailable';

export class VerificationError extends Error {
  constructor(
    readonly code: VerificationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'VerificationError';
  }
}
