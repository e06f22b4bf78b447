/**
 * Session state shared by the session broadcaster (writer), the verifier and the api
 * (readers: `readSession`), the SSE replay buffer and the webhook queues.
 */
export * from './session.store.js';
export * from './session-events.js';
export * from './session-webhooks.js';
