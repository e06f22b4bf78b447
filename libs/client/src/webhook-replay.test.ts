import { describe, expect, it } from 'vitest';
import { createWebhookReplayGuard } from './webhook-replay.js';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

describe('createWebhookReplayGuard', () => {
  it('recognises a delivery sent again inside the tolerance, signed and fresh as it is', () => {
    let clock = Date.UTC(2026, 11, 7, 12);
    const guard = createWebhookReplayGuard({ now: () => clock });
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = JSON.stringify({ id: 'evt-1', type: 'twofold.session.validated', data: {} });
    const headers = {
      'webhook-id': 'evt-1',
      'webhook-timestamp': String(clock / 1000),
      'webhook-signature': signWebhook({ secret, id: 'evt-1', timestamp: clock / 1000, body }),
    };
    const receive = () => {
      const event = verifyWebhookSignature({ secret, headers, body, now: clock });
      if (guard.alreadyHandled(event.id)) return 'ignored';
      guard.handled(event.id);
      return 'applied';
    };
    expect(receive()).toBe('applied');
    clock += 240_000; // 4 minutes later: the signature check alone still accepts it
    expect(receive()).toBe('ignored');
  });

  it('does not remember a delivery that was not handled, so a retry is applied', () => {
    const guard = createWebhookReplayGuard();
    expect(guard.alreadyHandled('evt-2')).toBe(false);
    expect(guard.alreadyHandled('evt-2')).toBe(false);
    guard.handled('evt-2');
    expect(guard.alreadyHandled('evt-2')).toBe(true);
  });

  it('forgets an id once no timestamp it could carry passes the tolerance', () => {
    let clock = 0;
    const guard = createWebhookReplayGuard({ toleranceSeconds: 60, now: () => clock });
    guard.handled('evt-3');
    clock = 119_999;
    expect(guard.alreadyHandled('evt-3')).toBe(true);
    clock = 120_000;
    expect(guard.alreadyHandled('evt-3')).toBe(false);
  });

  it('keeps at most maxEntries ids, forgetting the oldest first', () => {
    const guard = createWebhookReplayGuard({ maxEntries: 2 });
    guard.handled('a');
    guard.handled('b');
    guard.handled('c');
    expect([guard.alreadyHandled('a'), guard.alreadyHandled('b'), guard.alreadyHandled('c')]).toEqual([
      false,
      true,
      true,
    ]);
  });
});
