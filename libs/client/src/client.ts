import { randomUUID } from 'node:crypto';
import {
  hashSessionToken,
  type DecisionKind,
  type DecisionReasonKind,
  type LoginFailed,
  type LoginSucceeded,
} from '@twofold/contracts';
import {
  TwofoldApiError,
  TwofoldNetworkError,
  isNetworkFailure,
  networkError,
  problemError,
} from './errors.js';
import {
  subscribeSessionEvents,
  type SessionEventsOptions,
  type SessionEventsSubscription,
} from './session-events.js';

export interface TwofoldClientOptions {
  /** The api as the app's server reaches it, e.g. `https://twofold.internal:8080`. */
  baseUrl: string;
  /** The app's key from `POST /v1/admin/apps` (or `twofold app add`). */
  appKey: string;
  /** The app's id (`jira`): events are published as this app, and the api checks the key matches. */
  appId: string;
  /** Where users' browsers reach the hosted pages, when it differs from baseUrl. */
  publicUrl?: string;
  /** Deadline of one request (ms); a decision wait adds its own timeout. Default 10 000. */
  timeoutMs?: number;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
  /**
   * Retries of a request the api refused for now (429, 503) or, for requests that are safe
   * to repeat (login events, which always carry an id and time, and reads), that a proxy or
   * the network lost (502, 504, connection errors). Each waits `Retry-After` when the api
   * sends one, else a growing delay. Default 2; 0 turns retries off.
   */
  retries?: number;
  /** Longest wait before one retry (ms, default 5 000): a longer `Retry-After` is thrown to the caller. */
  maxRetryDelayMs?: number;
}

/**
 * How long after its last send an event id's first time is kept for a retry that gives only
 * the id: the api's window for one id (it keeps the decision, and refuses the id for another
 * login, 10 minutes).
 */
const FIRST_SENT_WINDOW_MS = 10 * 60_000;
/**
 * A ceiling on the ids kept, whatever the window holds: at most ~60 MB at 600 B an id. It is
 * reached only above ~160 logins a second with the app's own ids; past it the oldest go first
 * (a retry of one of those, without its time, becomes another event, as before this window).
 */
const FIRST_SENT_MAX_IDS = 100_000;

/** How long to wait before trying a failed request again, or undefined: do not retry. */
function retryDelay(err: unknown, idempotent: boolean, attempt: number, maxMs: number): number | undefined {
  const backoff = Math.min(maxMs, 250 * 2 ** attempt * (0.5 + Math.random() / 2));
  if (err instanceof TwofoldNetworkError) {
    // The request's own deadline passed: the caller's time is spent, do not double it.
    if (err.timedOut) return undefined;
    // The network failed (connection refused or reset; fetch raises a TypeError): safe to
    // repeat only if idempotent.
    return idempotent && err.cause instanceof TypeError ? backoff : undefined;
  }
  if (err instanceof TwofoldApiError) {
    // 429, and 503 with Retry-After (a replica shutting down), are refusals before anything
    // was done. A 503 without it may come after part of the work (a code verified whose
    // announcement failed: its step is spent, the api asks for the next code), and 502/504 (a
    // proxy) may hide a request that went through: only one safe to repeat goes again.
    const retry =
      err.status === 429 ||
      (err.status === 503 && (idempotent || err.retryAfterSeconds !== undefined)) ||
      (idempotent && (err.status === 502 || err.status === 504));
    if (!retry) return undefined;
    if (err.retryAfterSeconds === undefined) return backoff;
    const wait = err.retryAfterSeconds * 1000;
    return wait <= maxMs ? wait : undefined;
  }
  return undefined;
}

/** Who signed in, as the app knows it. Give the raw SSO token: the SDK sends only its hash. */
export interface SuccessfulLogin {
  username: string;
  /** The raw SSO token (for Crowd, `crowd.token_key`). Hashed here; never sent. */
  ssoToken: string;
  /** Client IP of the user's browser. */
  ip: string;
  /** How the user proved the first factor. Default `password`. */
  method?: LoginSucceeded['method'];
  /** The external IdP, for `method: 'sso'`. */
  idp?: string;
  /** RFC 8176 values the IdP asserted (`mfa`, `otp`, `hwk`…). */
  amr?: string[];
  groups?: string[];
  userAgent?: string;
  /**
   * Idempotency key; a fresh UUID when absent (made by the SDK, so its own retries reuse it).
   * Reuse it when retrying the same login.
   */
  eventId?: string;
  /**
   * When it happened (default: now). With an `eventId` the client sends the time of its
   * first attempt again on a retry (for 10 minutes after the id was last sent); pass it
   * yourself when the retry comes later or from elsewhere (the audit stores an event once by
   * its id and time).
   */
  time?: Date;
}

export interface FailedLogin {
  username: string;
  ip: string;
  reason: LoginFailed['reason'];
  ssoToken?: string;
  userAgent?: string;
  eventId?: string;
  /** See {@link SuccessfulLogin.time}. */
  time?: Date;
}

/** What the verifier decided for a login (`twofold.2fa.decided`). */
export interface SecondFactorDecision {
  decision: DecisionKind;
  reason: DecisionReasonKind;
  loginEventId: string;
  appId: string;
  session: string;
  /** With `challenge`: send the user to {@link TwofoldClient.challengeUrl} or post their code to {@link TwofoldClient.verifyCode}. */
  challengeId?: string;
  /** With `deny`: when the lock ends (null: until an admin lifts it). */
  lockedUntil?: string | null;
}

/**
 * No decision within the wait (the verifier is slow or down). Fail closed: do not let the
 * user in on this answer; ask again, or show an error.
 */
export interface UndecidedLogin {
  decision: 'undecided';
  loginEventId: string;
}

export interface SessionStatus {
  verified: boolean;
  username?: string;
  verifiedAt?: string;
  expiresAt?: string;
  /** The app where the code was typed. */
  appId?: string;
}

export type CodeVerification =
  | { verified: true; method: 'totp' | 'backup_code' }
  | { verified: false; reason: 'bad_code' | 'replayed' | 'expired' | 'locked'; attemptsLeft?: number };

export interface StartedEnrollment {
  enrollmentId: string;
  otpauthUri: string;
  /** The QR code of otpauthUri, an SVG document. */
  qrSvg: string;
  /** The hosted enrollment page to send the user to. */
  enrollUrl: string;
  expiresAt: string;
}

export interface EnrollmentDone {
  username: string;
  /** Show them to the user now: they are never returned again. */
  backupCodes: string[];
}

export interface TwofoldClient {
  /** Publishes `twofold.login.succeeded` and returns at once. */
  loginSucceeded(login: SuccessfulLogin): Promise<{ id: string }>;
  /**
   * Publishes `twofold.login.succeeded` and waits (up to `timeoutMs`, default 5 000) for the
   * verifier's decision: `challenge` (ask for a code), `skip`, `enroll` or `deny`.
   */
  decide(
    login: SuccessfulLogin,
    options?: { timeoutMs?: number },
  ): Promise<SecondFactorDecision | UndecidedLogin>;
  /** Publishes `twofold.login.failed` (the lockout detector counts it). */
  loginFailed(login: FailedLogin): Promise<{ id: string }>;
  /** Publishes `twofold.logout`: the session is no longer verified anywhere. */
  logout(input: {
    username: string;
    ssoToken: string;
    eventId?: string;
    time?: Date;
  }): Promise<{ id: string }>;
  /** Whether the SSO session passed the second factor, in any app. Throws on 503: ask for the code then. */
  sessionStatus(ssoToken: string): Promise<SessionStatus>;
  /** Checks the code a user typed for a challenge. Each code is accepted once. */
  verifyCode(challengeId: string, code: string): Promise<CodeVerification>;
  /** The hosted 2FA prompt; after a right code the user lands on `returnTo` (an origin the app registered). */
  challengeUrl(challengeId: string, returnTo?: string): string;
  /** Starts enrolling a user: a new secret, its QR code, and the hosted page. */
  startEnrollment(
    username: string,
    options?: { algorithm?: 'SHA1' | 'SHA256' | 'SHA512'; digits?: 6 | 8 },
  ): Promise<StartedEnrollment>;
  /** The hosted enrollment page, returning to `returnTo` after the backup codes. */
  enrollmentUrl(enrollmentId: string, returnTo?: string): string;
  /** Confirms an enrollment with a current code; null when the code is wrong. */
  confirmEnrollment(enrollmentId: string, code: string): Promise<EnrollmentDone | null>;
  /** Reuses the user's existing authenticator key (base32); a current code proves it. Null when the code is wrong. */
  importKey(input: {
    username: string;
    secret: string;
    code: string;
    algorithm?: 'SHA1' | 'SHA256' | 'SHA512';
    digits?: 6 | 8;
    period?: number;
  }): Promise<EnrollmentDone | null>;
  /** Follows session events (validated, revoked) over server-sent events, reconnecting by itself. */
  subscribeSessionEvents(
    options: Omit<SessionEventsOptions, 'baseUrl' | 'appKey' | 'fetch'>,
  ): SessionEventsSubscription;
}

/**
 * The app SDK: one object per app with its key. Every method maps to one route of the
 * api (CONTRACT.md); errors are {@link TwofoldApiError} with the api's `detail`, or its
 * subclass {@link TwofoldNetworkError} when no answer came.
 *
 * @example
 * const twofold = createTwofoldClient({ baseUrl: 'http://127.0.0.1:8080', appKey, appId: 'jira' });
 * const decided = await twofold.decide({ username: 'alice', ssoToken, ip: '203.0.113.7' });
 * if (decided.decision === 'challenge') redirect(twofold.challengeUrl(decided.challengeId!, 'https://jira.example.com/'));
 */
export function createTwofoldClient(options: TwofoldClientOptions): TwofoldClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const publicBase = (options.publicUrl ?? options.baseUrl).replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;

  const retries = Math.max(0, Math.floor(options.retries ?? 2));
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;

  async function callOnce<T>(
    method: string,
    path: string,
    payload: string | undefined,
    extra: { headers?: Record<string, string>; timeoutMs?: number; accept?: number[]; idempotent: boolean },
  ): Promise<{ status: number; body: T }> {
    const deadlineMs = extra.timeoutMs ?? timeoutMs;
    const request = `${method} ${path.split('?')[0]}`;
    let res: Response;
    let text: string;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.appKey}`,
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...extra.headers,
        },
        ...(payload !== undefined ? { body: payload } : {}),
        signal: AbortSignal.timeout(deadlineMs),
      });
    } catch (err) {
      if (!isNetworkFailure(err)) throw err;
      throw networkError(request, err, deadlineMs, extra.idempotent);
    }
    try {
      text = await res.text();
    } catch (err) {
      // The answer broke off: whatever was asked may have been done.
      throw networkError(request, err, deadlineMs, extra.idempotent);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok || extra.accept?.includes(res.status)) return { status: res.status, body: parsed as T };
    throw problemError(res, parsed, text);
  }

  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    extra: {
      headers?: Record<string, string>;
      timeoutMs?: number;
      accept?: number[];
      /** Sending it twice does the same as once (a read, or an event with its id and time). */
      idempotent?: boolean;
    } = {},
  ): Promise<{ status: number; body: T }> {
    const idempotent = extra.idempotent ?? method === 'GET';
    // Serialized once: every attempt sends these bytes, an event's id and time among them,
    // however long the retries take.
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      try {
        return await callOnce<T>(method, path, payload, { ...extra, idempotent });
      } catch (err) {
        if (attempt >= retries) throw err;
        const delay = retryDelay(err, idempotent, attempt, maxRetryDelayMs);
        if (delay === undefined) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  // The SDK's own retries resend the body they built (above) and need no memory. This one
  // serves the app's: calling again with the same `eventId` and no `time` (as the docs
  // invite, and as an undecided login is asked again) sends the first attempt's time, since
  // the api stamps "now" on an event without one and the audit is unique by id and time.
  // An id is forgotten FIRST_SENT_WINDOW_MS after it was last sent, not after some count of
  // others: a count covered seconds at a busy app's rate, and a retry after a longer outage
  // became another event. The cost is the ids sent in that window: about 200 B each with a
  // 36-character id, 600 B with one from crypto.randomUUID() (V8 keeps it in pieces), so
  // 12 to 36 MB at 100 logins a second with the app's own ids (60,000 ids); FIRST_SENT_MAX_IDS
  // bounds it for busier apps.
  const firstSent = new Map<string, { time: string; at: number }>();
  const forgetOld = () => {
    const now = performance.now();
    for (const [id, entry] of firstSent) {
      if (now - entry.at < FIRST_SENT_WINDOW_MS) break; // kept in order of last send
      firstSent.delete(id);
    }
    return now;
  };
  const rememberTime = (id: string, time: string) => {
    const now = forgetOld();
    firstSent.delete(id);
    if (firstSent.size >= FIRST_SENT_MAX_IDS) firstSent.delete(firstSent.keys().next().value!);
    firstSent.set(id, { time, at: now });
  };
  const identity = (input: { eventId?: string; time?: Date }) => {
    // Without an id the SDK makes one, and stamps the time, so that its own retries (and the
    // api's idempotency and the audit, keyed on both) see one event.
    if (!input.eventId) return { id: randomUUID(), time: (input.time ?? new Date()).toISOString() };
    // A time given on the first attempt is the one a retry without it must send again.
    forgetOld();
    const first = firstSent.get(input.eventId)?.time;
    const time = input.time?.toISOString() ?? first ?? new Date().toISOString();
    rememberTime(input.eventId, first ?? time);
    return { id: input.eventId, time };
  };

  const succeeded = (login: SuccessfulLogin) => ({
    type: 'twofold.login.succeeded',
    subject: login.username,
    ...identity(login),
    data: {
      appId: options.appId,
      session: hashSessionToken(login.ssoToken),
      method: login.method ?? 'password',
      ip: login.ip,
      ...(login.idp !== undefined ? { idp: login.idp } : {}),
      ...(login.amr !== undefined ? { amr: login.amr } : {}),
      ...(login.groups !== undefined ? { groups: login.groups } : {}),
      ...(login.userAgent !== undefined ? { userAgent: login.userAgent } : {}),
    },
  });
  const withReturnTo = (url: string, returnTo?: string) =>
    returnTo ? `${url}?${new URLSearchParams({ returnTo }).toString()}` : url;
  const enrollmentDone = async (path: string, body: unknown) => {
    const res = await call<EnrollmentDone & { type?: string }>('POST', path, body, { accept: [422] });
    return res.status === 422 ? null : res.body;
  };

  return {
    loginSucceeded: async (login) =>
      (await call<{ id: string }>('POST', '/v1/login-events', succeeded(login), { idempotent: true })).body,

    async decide(login, decideOptions = {}) {
      // The api waits 1 ms to 30 s (a whole number); anything else would be refused with 400.
      const wait = Math.min(30_000, Math.max(1, Math.round(decideOptions.timeoutMs ?? 5_000) || 5_000));
      const body = succeeded(login);
      const res = await call<SecondFactorDecision | { id: string }>(
        'POST',
        `/v1/login-events?wait=decision&timeoutMs=${wait}`,
        body,
        { timeoutMs: timeoutMs + wait, idempotent: true },
      );
      if (res.status === 200) return res.body as SecondFactorDecision;
      // The app is told to ask again with this id: the same event, even with an id the SDK made.
      if (!login.eventId) rememberTime(body.id, body.time);
      return { decision: 'undecided', loginEventId: (res.body as { id: string }).id };
    },

    async loginFailed(login) {
      const body = {
        type: 'twofold.login.failed',
        subject: login.username,
        ...identity(login),
        data: {
          appId: options.appId,
          ip: login.ip,
          reason: login.reason,
          ...(login.ssoToken !== undefined ? { session: hashSessionToken(login.ssoToken) } : {}),
          ...(login.userAgent !== undefined ? { userAgent: login.userAgent } : {}),
        },
      };
      return (await call<{ id: string }>('POST', '/v1/login-events', body, { idempotent: true })).body;
    },

    async logout(input) {
      const body = {
        type: 'twofold.logout',
        subject: input.username,
        ...identity(input),
        data: { appId: options.appId, session: hashSessionToken(input.ssoToken) },
      };
      return (await call<{ id: string }>('POST', '/v1/login-events', body, { idempotent: true })).body;
    },

    sessionStatus: async (ssoToken) =>
      (
        await call<SessionStatus>('GET', '/v1/sessions/current', undefined, {
          headers: { 'x-twofold-session': ssoToken },
        })
      ).body,

    verifyCode: async (challengeId, code) =>
      (
        await call<CodeVerification>('POST', `/v1/challenges/${encodeURIComponent(challengeId)}/verify`, {
          code,
        })
      ).body,

    challengeUrl: (challengeId, returnTo) =>
      withReturnTo(`${publicBase}/2fa/${encodeURIComponent(challengeId)}`, returnTo),

    startEnrollment: async (username, enrollOptions = {}) =>
      (await call<StartedEnrollment>('POST', '/v1/enrollments', { username, ...enrollOptions })).body,

    enrollmentUrl: (enrollmentId, returnTo) =>
      withReturnTo(`${publicBase}/enroll/${encodeURIComponent(enrollmentId)}`, returnTo),

    confirmEnrollment: (enrollmentId, code) =>
      enrollmentDone(`/v1/enrollments/${encodeURIComponent(enrollmentId)}/confirm`, { code }),

    importKey: (input) => enrollmentDone('/v1/enrollments/import', input),

    subscribeSessionEvents: (subscription) =>
      subscribeSessionEvents({ ...subscription, baseUrl: base, appKey: options.appKey, fetch: doFetch }),
  };
}
