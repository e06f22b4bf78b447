/**
 * The lockout detector's pure rules: thresholds and their defaults, the responses a
 * failure calls for, backoff schedules, spray assessment, event times, and the security
 * events it publishes. No I/O; the windows live in Redis (`@twofold/state`).
 */
export * from './rules.js';
export * from './event-time.js';
export * from './responses.js';
export * from './spray.js';
export * from './lockout-events.js';
