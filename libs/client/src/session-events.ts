import { networkFailureReason, problemError, TwofoldNetworkError } from './errors.js';
import type { SessionEvent } from './session-event.js';
import { createSseParser } from './sse-parser.js';

export interface SessionEventsOptions {
  /** The api's base URL, e.g. `https://twofold.example.com`. */
  baseUrl: string;
  /** The app's key (`Authorization: Bearer`). */
  appKey: string;
  /** Resume after this event (the `lastEventId` of an earlier subscription, stored by the app). */
  lastEventId?: string;
  /**
   * Called once per event, in order. The position advances when it returns (or its promise
   * resolves), so an event whose handler threw is delivered again after the reconnect.
   */
  onEvent: (event: SessionEvent, meta: { id: string }) => void | Promise<void>;
  /**
   * Events after the position were trimmed from the server's buffer (or it is a position
   * the stream does not know): re-check the sessions you hold. `gap.id` is the position just
   * past the gap: it becomes {@link SessionEventsSubscription.lastEventId} when the handler
   * returns (an async handler is awaited), so a reconnect does not report the same gap again;
   * store it as you store an event's id. A handler that throws (or rejects) gets the gap again
   * after the reconnect, like {@link onEvent}.
   */
  // `void`, not `void | Promise<void>`: a handler written for the earlier `() => void` (say
  // `() => gaps++`) must still compile; a promise it returns is awaited all the same.
  onGap?: (gap: SessionEventsGap) => void;
  /**
   * Connection problems; the subscription keeps reconnecting unless the api refuses the key
   * ({@link SessionEventsAuthError}) or the position ({@link SessionEventsPositionError}):
   * then it stops (and {@link SessionEventsSubscription.stopped} resolves with that error).
   * A connection that failed or went silent is a `TwofoldNetworkError` (status 0, `cause`).
   */
  onError?: (err: Error) => void;
  onOpen?: () => void;
  /**
   * Longest silence (ms) on a connection, from the request to its headers and between two
   * chunks, before it is taken for dead and reconnected. The api sends a heartbeat every
   * 15 s. Default 45 000.
   */
  idleTimeoutMs?: number;
  /** First reconnect delay (doubles up to maxReconnectDelayMs). */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
}

export interface SessionEventsSubscription {
  /** The id of the last event handled: store it to resume after a restart. */
  readonly lastEventId: string | undefined;
  /** Closes the stream for good. */
  close(): Promise<void>;
  /** Drops the current connection and reconnects with Last-Event-ID (as after a network failure). */
  reconnect(): void;
  /**
   * Settles once the subscription has stopped for good, and never rejects: with the error
   * that stopped it ({@link SessionEventsAuthError}, {@link SessionEventsPositionError}, or
   * one thrown by `onError` itself), or undefined after {@link close}. Unlike `onError`, an
   * app cannot leave it out: wait on it to learn that no more events will come.
   */
  readonly stopped: Promise<Error | undefined>;
}

/** A `gap` event: events after the position were missed. */
export interface SessionEventsGap {
  /**
   * The position past the gap (the gap event's id); undefined when the api gave none (an api
   * older than this SDK): the position stays, and a reconnect before the next event reports
   * the gap again.
   */
  id: string | undefined;
  /** The api's explanation. */
  detail?: string;
}

/** Thrown (to onError) when the api refuses the app key: the subscription stops. */
export class SessionEventsAuthError extends Error {
  constructor(readonly status: number) {
    super(`the api refused the app key (HTTP ${status}); the session-events subscription stopped`);
    this.name = 'SessionEventsAuthError';
  }
}

/**
 * Thrown (to onError) when the api refuses the position to resume from (HTTP 400: not an id
 * the stream sent, e.g. a corrupted stored position). Sending it again cannot help: the
 * subscription stops. Subscribe again without `lastEventId` (live events only) and re-check
 * the sessions you hold, as after a gap.
 */
export class SessionEventsPositionError extends Error {
  constructor(
    /** The position refused. */
    readonly lastEventId: string,
    /** The api's problem detail. */
    readonly detail: string,
  ) {
    super(
      `the api refused the position Last-Event-ID ${JSON.stringify(lastEventId)} (HTTP 400${
        detail ? `: ${detail}` : ''
      }); the session-events subscription stopped: subscribe again without lastEventId and re-check the sessions you hold`,
    );
    this.name = 'SessionEventsPositionError';
  }
}

/** The `data` of a gap event, read leniently: an older api sends only `detail`. */
function gapOf(sse: { id: string | undefined; data: string }): SessionEventsGap {
  let detail: unknown;
  try {
    detail = (JSON.parse(sse.data) as { detail?: unknown }).detail;
  } catch {
    /* not JSON */
  }
  return { id: sse.id || undefined, ...(typeof detail === 'string' ? { detail } : {}) };
}

/**
 * Event ids remembered to drop repeats. They are the events' own ids, not their positions: a
 * broadcaster that re-announces a batch after a retry appends the same events again, with new,
 * greater positions, so no comparison of positions could tell them apart. Repeats come soon
 * after the first, hence a count.
 */
const RECENT_IDS = 10_000;

const REQUEST = 'GET /v1/session-events';
/** A failure of the reader's connection, as the SDK reports one: status 0, retryable, `cause`. */
const connectionFailure = (timedOut: boolean, detail: string, cause: unknown) =>
  new TwofoldNetworkError(REQUEST, timedOut, `${detail}; reconnecting`, { cause });

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** What a refusal said: the problem+json `detail` when there is one, else the start of the body. */
async function refusalDetail(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    if (typeof detail === 'string' && detail) return detail;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 200);
}

/**
 * Subscribes to `GET /v1/session-events` (server-sent events) and keeps the subscription
 * alive: on any disconnect it reconnects with backoff and `Last-Event-ID`, so no event is
 * missed while the server's replay buffer still holds it.
 */
export function subscribeSessionEvents(options: SessionEventsOptions): SessionEventsSubscription {
  const doFetch = options.fetch ?? fetch;
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v1/session-events`;
  const firstDelay = options.reconnectDelayMs ?? 500;
  const maxDelay = options.maxReconnectDelayMs ?? 30_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const closed = new AbortController();
  let lastEventId = options.lastEventId;
  let connection: AbortController | undefined;
  let serverRetry: number | undefined;
  let manual = false;
  let wake: AbortController | undefined;
  const seen = new Set<string>();
  const remember = (id: string) => {
    seen.add(id);
    if (seen.size > RECENT_IDS) seen.delete(seen.values().next().value!);
  };

  async function connectOnce(): Promise<void> {
    const current = new AbortController();
    connection = current;
    const signal = AbortSignal.any([closed.signal, current.signal]);
    // A connection that says nothing (not even the heartbeat) for this long is dead: a
    // half-open TCP connection would otherwise be waited on for ever.
    let idle = false;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const stillAlive = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => ((idle = true), current.abort()), idleTimeoutMs);
    };
    const idleError = (cause: unknown) =>
      connectionFailure(true, `no data from ${REQUEST} for ${idleTimeoutMs} ms`, cause);
    // What the connection itself raised; an abort of ours (reconnect, close) is passed on as is.
    const connectionError = (err: unknown, what: string) =>
      current.signal.aborted || closed.signal.aborted
        ? err
        : connectionFailure(false, `${REQUEST}: ${what} (${networkFailureReason(err)})`, err);
    stillAlive();
    try {
      const headers: Record<string, string> = {
        authorization: `Bearer ${options.appKey}`,
        accept: 'text/event-stream',
      };
      if (lastEventId) headers['last-event-id'] = lastEventId;
      let response: Response;
      try {
        response = await doFetch(url, { headers, signal });
      } catch (err) {
        throw idle ? idleError(err) : connectionError(err, 'the api could not be reached');
      }
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw new SessionEventsAuthError(response.status);
      }
      // The api refuses a malformed position with 400, and would on every reconnect; one it
      // does not know (trimmed, another stream's) it answers with a `gap` event instead.
      if (response.status === 400 && headers['last-event-id'] !== undefined) {
        throw new SessionEventsPositionError(headers['last-event-id'], await refusalDetail(response));
      }
      if (!response.ok) {
        // The api's problem+json (a 503 while the feed is not running), as the client's errors are.
        const text = await response.text().catch(() => '');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON: a proxy's page */
        }
        throw problemError(response, parsed, text);
      }
      if (!response.body) throw new Error(`${REQUEST} answered HTTP ${response.status} without a body`);
      options.onOpen?.();
      // Events are handled one after another; the parser queues those of one chunk meanwhile,
      // and the next chunk is read only once they are handled: a slow handler slows the
      // stream (the api cuts off a client too far behind, which then resumes with
      // Last-Event-ID) instead of piling events up in memory.
      let chain = Promise.resolve();
      let failure: unknown;
      const parser = createSseParser({
        onRetry: (ms) => (serverRetry = ms),
        onEvent: (sse) => {
          chain = chain.then(async () => {
            if (failure !== undefined || closed.signal.aborted) return;
            try {
              if (sse.event === 'gap') {
                const gap = gapOf(sse);
                await options.onGap?.(gap);
                // Past the gap: a reconnect resumes after it instead of hearing it again.
                if (gap.id) lastEventId = gap.id;
                return;
              }
              if (!sse.id || !sse.event.startsWith('twofold.session.')) return;
              const event = JSON.parse(sse.data) as SessionEvent;
              // Deliveries are at least once: an event re-announced after a broadcaster retry
              // carries the same id, and is handed over once.
              if (!seen.has(event.id)) {
                await options.onEvent(event, { id: sse.id });
                remember(event.id);
              }
              lastEventId = sse.id;
            } catch (err) {
              failure = err;
              current.abort();
            }
          });
        },
      });
      const decoder = new TextDecoder();
      let streamError: unknown;
      try {
        for await (const chunk of response.body) {
          clearTimeout(idleTimer);
          parser.push(decoder.decode(chunk as Uint8Array, { stream: true }));
          await chain;
          if (failure !== undefined) break;
          stillAlive();
        }
      } catch (err) {
        streamError = err;
      }
      clearTimeout(idleTimer);
      await chain;
      if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure));
      if (idle) throw idleError(streamError);
      if (streamError !== undefined) throw connectionError(streamError, 'the connection broke');
    } finally {
      clearTimeout(idleTimer);
    }
  }

  const running = (async (): Promise<Error | undefined> => {
    let attempt = 0;
    while (!closed.signal.aborted) {
      const started = Date.now();
      try {
        await connectOnce();
        if (!closed.signal.aborted) {
          options.onError?.(connectionFailure(false, `${REQUEST}: the api ended the stream`, undefined));
        }
      } catch (err) {
        if (closed.signal.aborted) break;
        if (err instanceof SessionEventsAuthError || err instanceof SessionEventsPositionError) {
          options.onError?.(err);
          return err;
        }
        if (!(connection?.signal.aborted && (err as Error).name === 'AbortError')) {
          options.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (closed.signal.aborted) break;
      // A connection that lived a while, or a reconnect asked for, starts the backoff over.
      if (Date.now() - started > 10_000 || manual) attempt = 0;
      manual = false;
      wake = new AbortController();
      await sleep(
        Math.min(maxDelay, (serverRetry ?? firstDelay) * 2 ** attempt),
        AbortSignal.any([closed.signal, wake.signal]),
      );
      attempt = Math.min(attempt + 1, 16);
    }
    return undefined;
  })();
  // Only an onError that throws ends the loop otherwise: that stops the subscription too.
  const stopped = running.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));

  return {
    get lastEventId() {
      return lastEventId;
    },
    reconnect() {
      manual = true;
      connection?.abort();
      wake?.abort(); // while waiting to reconnect: now
    },
    stopped,
    async close() {
      closed.abort();
      connection?.abort();
      await stopped;
    },
  };
}
