// The SDK's errors: the api's problem+json answers, and requests that got no answer. Apart
// from client.ts so the session-event reader uses them without importing the client.

/** An RFC 9457 problem the api answered with; `detail` says what to fix. */
export class TwofoldApiError extends Error {
  constructor(
    /** HTTP status. */
    readonly status: number,
    /** The problem type, e.g. `https://twofold.dev/problems/rate-limited`. */
    readonly type: string,
    readonly title: string,
    readonly detail: string,
    /** Seconds to wait before retrying (429). */
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(status === 0 ? `${title}: ${detail}` : `${status} ${title}: ${detail}`, options);
    this.name = 'TwofoldApiError';
  }

  /** Whether trying again later can help: rate limits and outages, not bad input or a bad key. */
  get retryable(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

/**
 * The api could not be reached, or did not answer in time (after the SDK's own retries): no
 * HTTP answer, so `status` is 0 and `cause` is the error fetch raised. A TwofoldApiError, so
 * apps catch one type. The request may not have arrived, or may have been done and its
 * answer lost: `retryable` is true only for a request that is the same when sent twice (a
 * login event with its id and time, a read). A code is not: resent, it is refused as used
 * and counts as a wrong guess toward a lockout, so the user is asked for the next one.
 */
export class TwofoldNetworkError extends TwofoldApiError {
  constructor(
    /** The request that failed, e.g. `POST /v1/login-events`. */
    readonly request: string,
    /** True when the request's own deadline (`timeoutMs`) passed; false when the connection failed. */
    readonly timedOut: boolean,
    detail: string,
    options: { cause: unknown; idempotent?: boolean },
  ) {
    super(
      0,
      timedOut ? 'https://twofold.dev/problems/sdk-timeout' : 'https://twofold.dev/problems/sdk-network',
      timedOut ? 'No answer in time' : 'Network error',
      detail,
      undefined,
      options,
    );
    this.name = 'TwofoldNetworkError';
    this.idempotent = options.idempotent ?? true;
  }

  /** Whether sending the request again does the same as once (see the class comment). */
  readonly idempotent: boolean;

  override get retryable(): boolean {
    return this.idempotent;
  }
}

/**
 * What fetch (or reading its body) threw, in words: undici says "fetch failed" and keeps the
 * reason (ECONNREFUSED, a reset) in its cause, so the causes are followed.
 * @internal The SDK's own (the session-events reader uses it); not part of its API.
 */
export function networkFailureReason(err: unknown): string {
  const own = err instanceof Error ? err.message : String(err);
  const inner = err instanceof Error ? err.cause : undefined;
  return inner instanceof Error && inner.message ? `${own}: ${networkFailureReason(inner)}` : own;
}

/**
 * Whether fetch failed for want of an answer (undici's "fetch failed" with the reason as its
 * cause, or a deadline), not for the request itself (an invalid header value is a TypeError
 * too, and sending it again would fail the same way).
 */
export function isNetworkFailure(err: unknown): boolean {
  const e = err as Error | undefined;
  return (
    e?.name === 'TimeoutError' ||
    e?.name === 'AbortError' ||
    (e instanceof TypeError && e.message === 'fetch failed')
  );
}

/** What fetch (or reading its body) threw, as a TwofoldNetworkError. */
export function networkError(
  request: string,
  err: unknown,
  timeoutMs: number,
  idempotent: boolean,
): TwofoldNetworkError {
  const name = (err as Error | undefined)?.name;
  const timedOut = name === 'TimeoutError';
  const detail = timedOut
    ? `${request}: no answer from the api within ${timeoutMs} ms`
    : `${request}: the api could not be reached (${networkFailureReason(err)})`;
  return new TwofoldNetworkError(request, timedOut, detail, { cause: err, idempotent });
}

/** The api's problem+json (or, from a proxy, whatever it answered) as a TwofoldApiError. */
export function problemError(res: Response, parsed: unknown, text: string): TwofoldApiError {
  const problem = (parsed && typeof parsed === 'object' ? parsed : {}) as {
    type?: unknown;
    title?: unknown;
    detail?: unknown;
    retryAfterSeconds?: unknown;
  };
  const str = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
  const header = Number(res.headers.get('retry-after'));
  const fromBody = Number(problem.retryAfterSeconds);
  const retryAfter =
    Number.isFinite(header) && header > 0
      ? header
      : Number.isFinite(fromBody) && fromBody > 0
        ? fromBody
        : undefined;
  return new TwofoldApiError(
    res.status,
    str(problem.type) ?? 'about:blank',
    str(problem.title) ?? res.statusText,
    str(problem.detail) ?? (text.slice(0, 200) || `HTTP ${res.status}`),
    retryAfter,
  );
}
