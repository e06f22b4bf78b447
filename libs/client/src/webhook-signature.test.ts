import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature, WebhookVerificationError } from './webhook-signature.js';

// The reference vector of the Standard Webhooks specification.
const reference = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
const now = Date.parse('2026-11-28T09:00:00Z');
const body = JSON.stringify({
  specversion: '1.0',
  id: 'evt-1',
  type: 'twofold.session.validated',
  source: 'service/session-broadcaster',
  subject: 'alice',
  time: '2026-11-28T09:00:00.000Z',
  data: { session: 'a'.repeat(64), username: 'alice', appId: 'jira', verifiedAt: '', expiresAt: '' },
});
const signed = (overrides: Record<string, string> = {}, at = now) => {
  const timestamp = Math.floor(at / 1000);
  return {
    'webhook-id': 'evt-1',
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook({ secret, id: 'evt-1', timestamp, body }),
    ...overrides,
  };
};
const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as WebhookVerificationError;
  }
  throw new Error('expected a WebhookVerificationError');
};

describe('signWebhook', () => {
  it('matches the Standard Webhooks reference vector', () => {
    expect(signWebhook(reference)).toBe(reference.signature);
  });
});

describe('verifyWebhookSignature', () => {
  it('accepts a fresh, well-signed delivery and returns its event', () => {
    const event = verifyWebhookSignature({ secret, headers: signed(), body, now });
    expect(event).toMatchObject({ id: 'evt-1', type: 'twofold.session.validated' });
  });

  it('accepts the bytes as a Buffer and headers as fetch Headers, any of several signatures', () => {
    const headers = new Headers(signed());
    headers.set('webhook-signature', `v1,Zm9yZ2Vk ${headers.get('webhook-signature')}`);
    expect(verifyWebhookSignature({ secret, headers, body: Buffer.from(body), now }).id).toBe('evt-1');
  });

  it.each([
    ['a tampered body', () => ({ headers: signed(), body: body.replace('alice', 'mallory') })],
    [
      'another secret',
      () => ({ headers: signed(), body, secret: 'whsec_' + Buffer.alloc(32, 8).toString('base64') }),
    ],
    [
      'a forged signature',
      () => ({ headers: signed({ 'webhook-signature': 'v1,' + 'A'.repeat(44) }), body }),
    ],
    ['another id', () => ({ headers: signed({ 'webhook-id': 'evt-2' }), body })],
    [
      'a moved timestamp',
      () => ({ headers: signed({ 'webhook-timestamp': String(Math.floor(now / 1000) - 1) }), body }),
    ],
  ])('rejects %s as bad_signature', (_name, make) => {
    const input = make();
    const err = failure(() => verifyWebhookSignature({ secret, now, ...input }));
    expect(err).toBeInstanceOf(WebhookVerificationError);
    expect(err.code).toBe('bad_signature');
  });

  it('rejects a stale delivery (replayed after the tolerance) and one from the future', () => {
    const old = signed({}, now - 301_000);
    expect(failure(() => verifyWebhookSignature({ secret, headers: old, body, now })).code).toBe('stale');
    const future = signed({}, now + 301_000);
    expect(failure(() => verifyWebhookSignature({ secret, headers: future, body, now })).code).toBe('stale');
    // Within a custom tolerance it passes.
    expect(verifyWebhookSignature({ secret, headers: old, body, now, toleranceSeconds: 600 }).id).toBe(
      'evt-1',
    );
  });

  it('verifies across a secret rotation: a delivery signed by both, and a receiver holding both', () => {
    const rotated = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
    const timestamp = Math.floor(now / 1000);
    const both = [rotated, secret]
      .map((s) => signWebhook({ secret: s, id: 'evt-1', timestamp, body }))
      .join(' ');
    const headers = signed({ 'webhook-signature': both });
    // A receiver that has switched, and one that has not yet.
    expect(verifyWebhookSignature({ secret: rotated, headers, body, now }).id).toBe('evt-1');
    expect(verifyWebhookSignature({ secret, headers, body, now }).id).toBe('evt-1');
    // A receiver holding both secrets accepts deliveries signed by either alone.
    const onlyOld = signed();
    const onlyNew = signed({ 'webhook-signature': both.split(' ')[0]! });
    for (const h of [onlyOld, onlyNew])
      expect(verifyWebhookSignature({ secret: [rotated, secret], headers: h, body, now }).id).toBe('evt-1');
    // Neither secret: refused.
    const stranger = 'whsec_' + Buffer.alloc(32, 10).toString('base64');
    const err = failure(() => verifyWebhookSignature({ secret: [stranger], headers, body, now }));
    expect(err.code).toBe('bad_signature');
  });

  it('rejects a delivery without the headers', () => {
    const headers = { ...signed(), 'webhook-signature': undefined };
    expect(failure(() => verifyWebhookSignature({ secret, headers, body, now })).code).toBe('missing_header');
  });
});
