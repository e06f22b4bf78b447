import type { Logger } from 'pino';

export interface ShutdownStep {
  name: string;
  close: () => Promise<unknown> | unknown;
}

/**
 * Builds a close() that runs each step once, in order, even when one fails, all within a
 * deadline shorter than the pod's grace period. Calling it twice returns the same promise.
 */
export function createShutdown(options: { logger: Logger; timeoutMs: number; steps: ShutdownStep[] }) {
  let closing: Promise<void> | undefined;
  const { logger, timeoutMs, steps } = options;
  return function close(): Promise<void> {
    closing ??= (async () => {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        timer.unref();
      });
      const run = (async () => {
        for (const step of steps) {
          try {
            await step.close();
          } catch (err) {
            logger.error({ err, step: step.name }, 'shutdown step failed');
          }
        }
      })();
      const outcome = await Promise.race([run.then(() => 'done' as const), deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.error({ timeoutMs }, 'shutdown deadline passed; exiting anyway');
      else logger.info({ ms: Date.now() - started }, 'stopped');
    })();
    return closing;
  };
}

/** Stops the process on SIGTERM/SIGINT via close(), and logs fatal errors before exiting. */
export function stopOnSignals(close: () => Promise<void>, logger: Logger): void {
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    void close().finally(() => process.exit(1));
  });
}
