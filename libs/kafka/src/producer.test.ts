import { describe, expect, it } from 'vitest';
import { messageKey } from './producer.js';
import { createEvent, hashSessionToken } from '@twofold/contracts';

describe('messageKey', () => {
  const session = hashSessionToken('t');
  it('keys the session topic by session and every other topic by the normalized subject', () => {
    const validated = createEvent('twofold.session.validated', 'service/session-broadcaster', 'Alice', {
      session,
      username: 'alice',
      appId: 'jira',
      verifiedAt: new Date().toISOString(),
      expiresAt: new Date().toISOString(),
    });
    expect(messageKey('session', validated)).toBe(session);
    const login = createEvent('twofold.logout', 'app/jira', ' Alice ', { appId: 'jira', session });
    expect(messageKey('login', login)).toBe('alice');
  });
});
