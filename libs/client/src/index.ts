/**
 * The app SDK of twofold. Export list only: each feature lives in its own file.
 */
export * from './client.js';
export { TwofoldApiError, TwofoldNetworkError } from './errors.js';
export * from './session-event.js';
export * from './webhook-signature.js';
export * from './webhook-replay.js';
export * from './sse-parser.js';
export * from './session-events.js';
