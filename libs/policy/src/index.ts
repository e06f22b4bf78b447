/** The pure 2FA decision: who must give a second factor, for which login, and why. */
export * from './requirement.js';
export * from './decide-second-factor.js';
