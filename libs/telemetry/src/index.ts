/** Logging, metrics, tracing and the process lifecycle shared by every service. */
export * from './logger.js';
export * from './metrics.js';
export * from './health-server.js';
export * from './process-lifecycle.js';
export * from './trace-context.js';
export { startTracing, stopTracing } from './tracing.js';
