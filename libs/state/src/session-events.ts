import type { Redis } from '@twofold/redis';
import { defineScripts, type ScriptPipeline } from './scripts.js';

/**
 * The replay buffer of session events for server-sent events: a Redis Stream written by
 * the session broadcaster and read by every api replica. Stream ids (`<ms>-<seq>`) are the
 * SSE event ids, so a client resumes with `Last-Event-ID` from exactly where it was.
 */

/** One session event as stored: its stream id, CloudEvents type and JSON text. */
export interface SessionStreamEntry {
  id: string;
  type: string;
  json: string;
}

export const DEFAULT_SESSION_STREAM_MAXLEN = 100_000;

export function sessionEventStreamKey(prefix: string): string {
  return `${prefix}{session-events}`;
}
/** The id of the newest entry trimmed away: a client resuming from before it missed events. */
export function sessionEventTrimmedKey(prefix: string): string {
  return `${prefix}{session-events}:trimmed-through`;
}

// KEYS: stream, trimmed-through. ARGV: maxLen. Trims exactly to maxLen, oldest first, and
// records the newest id removed (XADD's own MAXLEN trimming would not say what it removed).
const TRIM_STREAM = `
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local doomed = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
redis.call('SET', KEYS[2], doomed[#doomed][1])
return excess
`;
const TRIM_SCRIPTS = { twofoldSessionStreamTrim: { numberOfKeys: 2, lua: TRIM_STREAM } } as const;

/** Trims the stream to its newest maxLen entries, remembering where it was cut; returns how many went. */
export async function trimSessionEvents(redis: Redis, prefix: string, maxLen: number): Promise<number> {
  const client = defineScripts(redis, TRIM_SCRIPTS);
  return (await client.twofoldSessionStreamTrim(
    sessionEventStreamKey(prefix),
    sessionEventTrimmedKey(prefix),
    maxLen,
  )) as number;
}

const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** Orders two stream ids (negative, zero, positive). */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** Appends events (then trims the stream to maxLen entries); returns their ids. */
export async function appendSessionEvents(
  redis: Redis,
  prefix: string,
  events: readonly { type: string; json: string }[],
  maxLen: number = DEFAULT_SESSION_STREAM_MAXLEN,
): Promise<string[]> {
  if (events.length === 0) return [];
  const key = sessionEventStreamKey(prefix);
  const pipeline = defineScripts(redis, TRIM_SCRIPTS).pipeline() as ScriptPipeline<keyof typeof TRIM_SCRIPTS>;
  for (const event of events) pipeline.xadd(key, '*', 'type', event.type, 'event', event.json);
  pipeline.twofoldSessionStreamTrim(key, sessionEventTrimmedKey(prefix), maxLen);
  const replies = (await pipeline.exec()) ?? [];
  return replies.slice(0, events.length).map(([err, id]) => {
    if (err) throw err;
    return id as string;
  });
}

type RawEntry = [id: string, fields: string[]];
function toEntries(raw: readonly RawEntry[]): SessionStreamEntry[] {
  return raw.map(([id, fields]) => {
    const entry: SessionStreamEntry = { id, type: '', json: '' };
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'type') entry.type = fields[i + 1]!;
      else if (fields[i] === 'event') entry.json = fields[i + 1]!;
    }
    return entry;
  });
}

/** Entries strictly after `afterId`, oldest first, at most `count`. */
export async function readSessionEventsAfter(
  redis: Redis,
  prefix: string,
  afterId: string,
  count = 500,
): Promise<SessionStreamEntry[]> {
  const raw = (await redis.xrange(
    sessionEventStreamKey(prefix),
    `(${afterId}`,
    '+',
    'COUNT',
    count,
  )) as RawEntry[];
  return toEntries(raw);
}

interface StreamInfo {
  lastGeneratedId: string;
  /** The newest id no longer in the stream (trimmed or deleted). */
  goneThrough: string;
}
async function streamInfo(redis: Redis, prefix: string): Promise<StreamInfo | undefined> {
  const replies = ((await redis
    .pipeline()
    .xinfo('STREAM', sessionEventStreamKey(prefix))
    .get(sessionEventTrimmedKey(prefix))
    .exec()) ?? []) as [Error | null, unknown][];
  const [infoErr, flat] = replies[0] ?? [new Error('no reply'), undefined];
  const trimmed = replies[1]?.[1];
  if (infoErr) {
    if (/no such key/i.test(infoErr.message)) return undefined;
    throw infoErr;
  }
  const info = new Map<string, unknown>();
  const list = flat as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) info.set(String(list[i]), list[i + 1]);
  const deleted = String(info.get('max-deleted-entry-id') ?? '0-0');
  const trimmedThrough = typeof trimmed === 'string' && isStreamId(trimmed) ? trimmed : '0-0';
  return {
    lastGeneratedId: String(info.get('last-generated-id') ?? '0-0'),
    goneThrough: compareStreamIds(deleted, trimmedThrough) > 0 ? deleted : trimmedThrough,
  };
}

export interface SessionEventSubscription {
  /** True when events after the requested id were trimmed away (or the id is unknown): the client missed some. */
  readonly gap: boolean;
  unsubscribe(): void;
}

export type SessionEventListener = (entries: readonly SessionStreamEntry[]) => void;
/**
 * Entries after the subscriber's position are gone. `resumeAfter` is a position past the
 * gap: every entry after it that the stream still holds is delivered (none is skipped), and
 * subscribing again after it reports no gap, even when no entry follows the gap (the live
 * end for an id the stream never issued, the newest id trimmed away otherwise).
 */
export type SessionEventGapListener = (resumeAfter: string) => void;

export interface SessionEventFeed {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Delivers every entry after `afterId` (the client's Last-Event-ID), then live ones, in
   * order, each once; without `afterId`, live entries only. `onGap` runs (at most once)
   * before the catch-up entries that follow missing ones, when entries after `afterId` are
   * gone, with the position to resume from past them. Resolves once the catch-up is sent.
   */
  subscribe(
    afterId: string | undefined,
    listener: SessionEventListener,
    onGap?: SessionEventGapListener,
  ): Promise<SessionEventSubscription>;
  isRunning(): boolean;
}

/**
 * One reader per process that follows the stream with XREAD BLOCK on its own connection
 * (`reader`, which must allow blocking commands) and fans entries out to subscribers.
 * Catch-up reads use `redis`.
 */
export function createSessionEventFeed(deps: {
  reader: Redis;
  redis: Redis;
  prefix: string;
  blockMs?: number;
  onError?: (err: unknown) => void;
}): SessionEventFeed {
  const key = sessionEventStreamKey(deps.prefix);
  const blockMs = deps.blockMs ?? 5_000;
  const listeners = new Set<SessionEventListener>();
  let running = false;
  let loop: Promise<void> | undefined;

  async function follow(): Promise<void> {
    // Where the stream ends now, read on the reader (which waits for a connection): the
    // state client refuses commands until it is ready, and Redis may be down at start.
    let position: string | undefined;
    while (running) {
      try {
        if (position === undefined) {
          position = (await streamInfo(deps.reader, deps.prefix))?.lastGeneratedId ?? '0-0';
          continue;
        }
        const reply = (await deps.reader.xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', key, position)) as
          [string, RawEntry[]][] | null;
        const raw = reply?.[0]?.[1];
        if (!raw || raw.length === 0) continue;
        const entries = toEntries(raw);
        position = entries[entries.length - 1]!.id;
        for (const listener of listeners) {
          try {
            listener(entries);
          } catch (err) {
            deps.onError?.(err);
          }
        }
      } catch (err) {
        if (!running) return;
        deps.onError?.(err);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      loop = follow();
    },
    async stop() {
      if (!running) return;
      running = false;
      listeners.clear();
      // Breaks the XREAD BLOCK at once; the reader connection is the feed's own.
      deps.reader.disconnect();
      await loop;
    },
    isRunning: () => running,
    async subscribe(afterId, listener, onGap) {
      if (afterId === undefined) {
        listeners.add(listener);
        return { gap: false, unsubscribe: () => listeners.delete(listener) };
      }
      // Listen first (buffering), then catch up from the stream, then hand over: an entry
      // written meanwhile is either in the catch-up or in the buffer, and ids filter doubles.
      let live = false;
      let lastSent = afterId;
      const buffered: SessionStreamEntry[] = [];
      const forward = (entries: readonly SessionStreamEntry[]) => {
        const fresh = entries.filter((e) => compareStreamIds(e.id, lastSent) > 0);
        if (fresh.length === 0) return;
        lastSent = fresh[fresh.length - 1]!.id;
        listener(fresh);
      };
      const own: SessionEventListener = (entries) => (live ? forward(entries) : buffered.push(...entries));
      listeners.add(own);
      try {
        const info = await streamInfo(deps.redis, deps.prefix);
        let gap = false;
        if (!info) {
          gap = afterId !== '0-0';
          lastSent = '0-0';
          if (gap) onGap?.('0-0');
        } else if (compareStreamIds(afterId, info.lastGeneratedId) > 0) {
          // An id this stream never issued (another environment, or Redis was reset).
          gap = true;
          lastSent = info.lastGeneratedId;
          onGap?.(info.lastGeneratedId);
        } else {
          gap = compareStreamIds(info.goneThrough, afterId) > 0;
          // What is left after goneThrough is all delivered below.
          if (gap) onGap?.(info.goneThrough);
        }
        for (;;) {
          const from = lastSent;
          const page = await readSessionEventsAfter(deps.redis, deps.prefix, from, 500);
          // Entries may have been trimmed since the check above (or the previous page): if
          // the stream is now cut past where this read started, some after it were missed.
          if (!gap) {
            const now = await streamInfo(deps.redis, deps.prefix);
            if (now && compareStreamIds(now.goneThrough, from) > 0) {
              gap = true;
              onGap?.(now.goneThrough);
            }
          }
          forward(page);
          if (page.length < 500) break;
        }
        forward(buffered);
        buffered.length = 0;
        live = true;
        return { gap, unsubscribe: () => listeners.delete(own) };
      } catch (err) {
        listeners.delete(own);
        throw err;
      }
    },
  };
}
