import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/**
 * Security headers on every response (@fastify/helmet). The api answers JSON, so its CSP
 * allows nothing at all; the hosted pages set their own (pages/html.ts `pageCsp`) and the
 * OpenAPI UI at /docs its own (script hashes, see app.ts). HSTS only when users reach the
 * api over https, where browsers honour it.
 */
export async function registerSecurityHeaders(
  app: FastifyInstance,
  options: { publicUrl: string },
): Promise<void> {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    strictTransportSecurity: options.publicUrl.startsWith('https:')
      ? { maxAge: 31_536_000, includeSubDomains: true }
      : false,
  });
}

/**
 * The CSP of the OpenAPI UI: swagger-ui's own (scripts only by hash), with inline styles
 * allowed (the UI sets style attributes as it renders) and without the https upgrade that
 * breaks plain-http local use. The hosted pages for users stay strict.
 */
export function docsCsp(header: string): string {
  return header
    .replace(/\s*upgrade-insecure-requests;?/, '')
    .replace(/style-src ([^;]*);/, (_all, sources: string) => `style-src ${sources.trim()} 'unsafe-inline';`);
}
