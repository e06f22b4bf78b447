/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface ServerSentEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * An incremental text/event-stream parser: feed it chunks as they arrive; it calls
 * `onEvent` per complete event and `onRetry` for a `retry:` field. Comments (`:` lines,
 * used as heartbeats) are skipped.
 */
export function createSseParser(handlers: {
  onEvent: (event: ServerSentEvent) => void;
  onRetry?: (ms: number) => void;
}) {
  let buffer = '';
  let data: string[] = [];
  let eventType = '';
  let id: string | undefined;
  let sawField = false;

  const dispatch = () => {
    if (sawField && data.length > 0)
      handlers.onEvent({ id, event: eventType || 'message', data: data.join('\n') });
    data = [];
    eventType = '';
    id = undefined;
    sawField = false;
  };

  const line = (text: string) => {
    if (text === '') return dispatch();
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    sawField = true;
    if (field === 'data') data.push(value);
    else if (field === 'event') eventType = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) handlers.onRetry?.(Number(value));
  };

  return {
    push(chunk: string) {
      buffer += chunk;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        if (!match) return;
        // A lone \r at the very end may be the first half of \r\n: wait for more.
        if (match[0] === '\r' && match.index === buffer.length - 1) return;
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    },
    /** Drops a partial event (the connection ended mid-event). */
    reset() {
      buffer = '';
      data = [];
      eventType = '';
      id = undefined;
      sawField = false;
    },
  };
}
