import { CliError, requireEnv, type CliEnv } from './settings.js';

export type AdminClient = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
) => Promise<T>;

/**
 * The admin API as the CLI uses it: TWOFOLD_API_URL with TWOFOLD_ADMIN_KEY. A problem
 * answer becomes a CliError carrying the api's `detail`.
 */
export function createAdminClient(env: CliEnv): AdminClient {
  const { TWOFOLD_API_URL: baseUrl, TWOFOLD_ADMIN_KEY: adminKey } = requireEnv(env, [
    'TWOFOLD_API_URL',
    'TWOFOLD_ADMIN_KEY',
  ]);
  return async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${baseUrl.replace(/\/+$/, '')}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminKey}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new CliError(
        `cannot reach the api at ${baseUrl} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is it running? (npm run stack:up)`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const detail = (parsed as { detail?: string } | undefined)?.detail ?? (text || res.statusText);
      if (res.status === 404 && /^no route /.test(detail)) {
        throw new CliError(
          `the api at ${baseUrl} does not offer ${method} ${path.split('?')[0]} (an older version?)`,
        );
      }
      throw new CliError(`${detail} (HTTP ${res.status})`);
    }
    return parsed as T;
  };
}
