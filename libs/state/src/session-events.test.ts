import type { Redis } from '@twofold/redis';
import { describe, expect, it } from 'vitest';
import { compareStreamIds, createSessionEventFeed, type SessionStreamEntry } from './session-events.js';

/**
 * The commands subscribe's catch-up sends (XINFO STREAM and GET in a pipeline, XRANGE), on
 * a stream held in memory. `afterRead` runs after each XRANGE: a trim while catching up.
 */
interface FakeStream {
  ids: string[];
  lastGeneratedId: string;
  trimmedThrough?: string;
  afterRead?: (stream: FakeStream) => void;
}
function fakeRedis(stream: FakeStream | undefined): Redis {
  const fake = {
    pipeline() {
      const replies: [Error | null, unknown][] = [];
      const chain = {
        xinfo() {
          replies.push(
            stream
              ? [null, ['length', stream.ids.length, 'last-generated-id', stream.lastGeneratedId]]
              : [new Error('ERR no such key'), undefined],
          );
          return chain;
        },
        get() {
          replies.push([null, stream?.trimmedThrough ?? null]);
          return chain;
        },
        exec: async () => replies,
      };
      return chain;
    },
    async xrange(_key: string, start: string, _end: string, _count: string, count: number) {
      const after = start.slice(1); // `(<id>`: exclusive
      const page = (stream?.ids ?? []).filter((id) => compareStreamIds(id, after) > 0).slice(0, count);
      if (stream?.afterRead) stream.afterRead(stream);
      return page.map((id) => [id, ['type', 'twofold.session.revoked', 'event', '{}']]);
    },
  };
  return fake as unknown as Redis;
}

async function subscribeOnce(stream: FakeStream | undefined, afterId: string) {
  const redis = fakeRedis(stream);
  const feed = createSessionEventFeed({ reader: redis, redis, prefix: 't:' });
  const gaps: string[] = [];
  const delivered: SessionStreamEntry[] = [];
  const sub = await feed.subscribe(
    afterId,
    (entries) => delivered.push(...entries),
    (resumeAfter) => void gaps.push(resumeAfter),
  );
  sub.unsubscribe();
  return { gap: sub.gap, gaps, delivered: delivered.map((e) => e.id) };
}

describe('session event feed: the position past a gap', () => {
  it.each<[string, () => FakeStream | undefined, string, string, string[]]>([
    // name, stream, afterId, resumeAfter, delivered
    [
      'an id this stream never issued: the live end',
      () => ({ ids: ['5-0'], lastGeneratedId: '5-0' }),
      '9-0',
      '5-0',
      [],
    ],
    [
      'everything after the id trimmed away: the newest id trimmed',
      () => ({ ids: [], lastGeneratedId: '5-0', trimmedThrough: '5-0' }),
      '1-0',
      '5-0',
      [],
    ],
    [
      'some trimmed, newer ones kept: the newest trimmed, and the kept ones follow',
      () => ({ ids: ['4-0', '5-0'], lastGeneratedId: '5-0', trimmedThrough: '3-0' }),
      '1-0',
      '3-0',
      ['4-0', '5-0'],
    ],
    [
      'trimmed while catching up',
      () => ({
        ids: ['2-0', '3-0', '4-0'],
        lastGeneratedId: '4-0',
        afterRead: (s) => ((s.trimmedThrough = '3-0'), (s.ids = ['4-0'])),
      }),
      '1-0',
      '3-0',
      ['2-0', '3-0', '4-0'],
    ],
    ['no stream at all (Redis emptied)', () => undefined, '7-0', '0-0', []],
  ])('%s', async (_name, stream, afterId, resumeAfter, delivered) => {
    const state = stream();
    const first = await subscribeOnce(state, afterId);
    expect(first).toEqual({ gap: true, gaps: [resumeAfter], delivered });
    // Resuming there (the stream as it is now): no gap again, and nothing it holds is skipped.
    if (state) delete state.afterRead;
    const again = await subscribeOnce(state, resumeAfter);
    const kept = (state?.ids ?? []).filter((id) => compareStreamIds(id, resumeAfter) > 0);
    expect(again).toEqual({ gap: false, gaps: [], delivered: kept });
  });

  it('reports no gap for a position nothing was trimmed after', async () => {
    const stream = { ids: ['4-0', '5-0'], lastGeneratedId: '5-0', trimmedThrough: '3-0' };
    expect(await subscribeOnce(stream, '3-0')).toEqual({ gap: false, gaps: [], delivered: ['4-0', '5-0'] });
  });
});
