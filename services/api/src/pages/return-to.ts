/**
 * `returnTo` of a hosted page, kept only when its origin is one the app registered
 * (`origins` of POST /v1/admin/apps): anything else would make the page an open redirect.
 * Returns the normalized absolute URL, or undefined.
 */
export function allowedReturnTo(raw: unknown, origins: readonly string[]): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined; // relative or malformed: there is no app origin to check it against
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  const allowed = origins.some((origin) => {
    try {
      return new URL(origin).origin === url.origin;
    } catch {
      return false;
    }
  });
  return allowed ? url.href : undefined;
}
