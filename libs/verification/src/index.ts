/**
 * The second-factor operations shared by the api and the verifier: the policy copy every
 * replica keeps fresh, code verification, enrollment, and key rotation.
 */
export * from './errors.js';
export * from './policy-snapshot.js';
export * from './sealed-enrollment.js';
export * from './code-verifier.js';
export * from './enrollment-cache.js';
export * from './enrollment.service.js';
export * from './key-rotation.js';
