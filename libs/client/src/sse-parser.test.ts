import { describe, expect, it } from 'vitest';
import { createSseParser, type ServerSentEvent } from './sse-parser.js';

const parse = (chunks: string[]) => {
  const events: ServerSentEvent[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.push(chunk);
  return { events, retries };
};

describe('createSseParser', () => {
  it('parses id, event and multi-line data, skipping comments', () => {
    const { events, retries } = parse([': hello\n\nretry: 1000\n\nid: 1-0\nevent: a\ndata: x\ndata: y\n\n']);
    expect(retries).toEqual([1000]);
    expect(events).toEqual([{ id: '1-0', event: 'a', data: 'x\ny' }]);
  });

  it('reassembles events split across chunks at any byte, with CRLF or LF', () => {
    const text =
      'id: 5-1\r\nevent: twofold.session.revoked\r\ndata: {"a":1}\r\n\r\nid: 5-2\ndata: {"b":2}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const { events } = parse([text.slice(0, cut), text.slice(cut)]);
      expect(events, `cut at ${cut}`).toEqual([
        { id: '5-1', event: 'twofold.session.revoked', data: '{"a":1}' },
        { id: '5-2', event: 'message', data: '{"b":2}' },
      ]);
    }
  });

  it('does not dispatch an event that has not ended', () => {
    expect(parse(['id: 1-0\ndata: x\n']).events).toEqual([]);
  });
});
