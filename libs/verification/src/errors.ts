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

/** The work's result; when it fails (a store or Kafka out of reach), `unavailable` with the message. */
export async function orUnavailable<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch {
    throw new VerificationError('unavailable', message);
  }
}
