/**
 * Lockout state: the lockout detector writes it (lockout.store.ts), the verifier and the
 * api read it (`readLockStates`, `readLockState`), admins list and lift it
 * (`listLockouts`, `liftLockout`). Key layout in lockout-keys.ts.
 */
export * from './lockout-keys.js';
export * from './lockout-network.js';
export * from './lockout.store.js';
export * from './lockout.state.js';
