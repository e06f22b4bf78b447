/** Environment configuration, validated once at start-up. */
export * from './env.js';
export * from './common.js';
export * from './networks.js';
