/**
 * Shared state in Redis that several services read and write (decisions now; sessions,
 * challenges and lockouts as they land). One place owns the key layout.
 */
export * from './decision.store.js';
export * from './scripts.js';
export * from './replay-guard.js';
export * from './challenge.store.js';
export * from './session.js';
export * from './lockout.js';
