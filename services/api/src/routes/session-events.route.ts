import Type from 'typebox';
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isStreamId, type SessionEventFeed, type SessionStreamEntry } from '@twofold/state';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

const Query = Type.Object({
  lastEventId: Type.Optional(
    Type.String({
      description: 'resume after this event id, for clients that cannot send the Last-Event-ID header',
    }),
  ),
});

/** Beyond this much unsent data a client is too slow: it is cut off and resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

const frame = (entry: SessionStreamEntry) => `id: ${entry.id}\nevent: ${entry.type}\ndata: ${entry.json}\n\n`;
/** The id just before `id` (`5-3` → `5-2`, `5-0` → `4-18446744073709551615`): resuming after it starts at `id`. */
function idBefore(id: string): string | undefined {
  const [ms = '0', seq = '0'] = id.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  return BigInt(ms) > 0n ? `${BigInt(ms) - 1n}-18446744073709551615` : undefined;
}

/**
 * The `gap` event. `lastEventId` is where the client asked to resume; with the first event
 * sent after the gap known, `nextEventId` names it and the frame's `id:` is the position
 * just before it, so the client's Last-Event-ID moves past the gap (a reconnect resumes
 * there without another gap, and misses nothing: the next event is sent again). With no
 * event after it, the frame's `id:` is `resumeAfter`, the feed's position past the gap (the
 * live end, or the newest id trimmed away), also sent as `resumeAfterEventId`.
 */
function gapFrame(lastEventId: string, next: SessionStreamEntry | undefined, resumeAfter: string): string {
  const position = (next && idBefore(next.id)) ?? resumeAfter;
  const data = JSON.stringify({
    detail: `events after ${lastEventId} are no longer kept; re-check sessions`,
    lastEventId,
    ...(next ? { nextEventId: next.id } : { resumeAfterEventId: resumeAfter }),
  });
  return `id: ${position}\nevent: gap\ndata: ${data}\n\n`;
}

// Live subscribers receive the same entries array from the feed: frame it once for all of them.
const framed = new WeakMap<readonly SessionStreamEntry[], string>();
function framesOf(entries: readonly SessionStreamEntry[]): string {
  let text = framed.get(entries);
  if (text === undefined) framed.set(entries, (text = entries.map(frame).join('')));
  return text;
}

/**
 * GET /v1/session-events: the session topic as server-sent events. Each event's `id` is
 * its position in the replay buffer; a client that reconnects with `Last-Event-ID` gets
 * every event after it, then live ones. A `gap` event says some were trimmed away (or the
 * id is not one this stream issued); it carries the position past the gap (see gapFrame).
 * A malformed id is refused with 400.
 */
export function sessionEventsRoute(deps: {
  auth: Authenticator;
  feed: SessionEventFeed;
  heartbeatMs?: number;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    const open = new Set<ServerResponse>();
    // SSE responses never end by themselves: end them so close() does not wait on them.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
      open.clear();
    });

    app.get(
      '/v1/session-events',
      {
        schema: {
          tags: ['sessions'],
          summary: 'Session events (validated, revoked) as server-sent events, resumable with Last-Event-ID',
          querystring: Query,
          produces: ['text/event-stream'],
        },
      },
      async (request, reply) => {
        await deps.auth.requireApp(request);
        const header = request.headers['last-event-id'];
        const lastEventId = (Array.isArray(header) ? header[0] : header)?.trim() || request.query.lastEventId;
        if (lastEventId !== undefined && !isStreamId(lastEventId)) {
          throw problems.invalid('Last-Event-ID must be an event id this stream sent (like 1764320400000-0)');
        }
        if (!deps.feed.isRunning())
          throw problems.unavailable('the session event stream is not running; retry shortly');

        reply.hijack();
        const res = reply.raw;
        // The client may have left while it was authenticated: its `close` has fired already.
        if (request.raw.destroyed || res.destroyed || res.socket?.destroyed !== false) {
          res.destroy();
          return;
        }
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write('retry: 1000\n\n');
        open.add(res);
        let closed = false;
        let unsubscribe = () => {};
        const close = () => {
          if (closed) return;
          closed = true;
          clearInterval(heartbeat);
          unsubscribe();
          open.delete(res);
          if (!res.writableEnded) res.end();
        };
        const send = (text: string) => {
          if (closed) return;
          res.write(text);
          if (res.writableLength > MAX_BUFFERED_BYTES) {
            request.log.warn('session-events client too slow; closing its stream');
            close();
          }
        };
        const heartbeat = setInterval(() => send(': keep-alive\n\n'), deps.heartbeatMs ?? 15_000);
        request.raw.on('close', close);
        res.on('close', close);
        res.on('error', close);
        // The feed reports a gap before the catch-up that follows it: the gap is sent with the
        // first of those events, whose id gives it a position, or alone once the catch-up is
        // done (nothing followed) at the position the feed gave.
        let gapPending: string | undefined;
        try {
          const subscription = await deps.feed.subscribe(
            lastEventId,
            (entries) => {
              if (gapPending !== undefined) {
                send(gapFrame(lastEventId!, entries[0], gapPending));
                gapPending = undefined;
              }
              send(framesOf(entries));
            },
            (resumeAfter) => (gapPending = resumeAfter),
          );
          if (gapPending !== undefined) {
            send(gapFrame(lastEventId!, undefined, gapPending));
            gapPending = undefined;
          }
          unsubscribe = subscription.unsubscribe;
          if (closed) unsubscribe();
        } catch (err) {
          request.log.error({ err }, 'session-events subscription failed');
          close();
        }
      },
    );
  };
}
