// A browser-less visitor of the hosted pages: keeps cookies, reads forms, posts them.

export interface PageResponse {
  status: number;
  headers: Headers;
  html: string;
  location: string | null;
}

/** A visitor with its own cookie jar (the CSRF secret lives in a cookie). */
export function pageVisitor(baseUrl: string) {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  async function request(method: string, path: string, form?: Record<string, string>): Promise<PageResponse> {
    const res = await fetch(new URL(path, baseUrl), {
      method,
      redirect: 'manual',
      headers: {
        ...(jar.size ? { cookie: cookieHeader() } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      jar.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
    return {
      status: res.status,
      headers: res.headers,
      html: await res.text(),
      location: res.headers.get('location'),
    };
  }
  return {
    jar,
    get: (path: string) => request('GET', path),
    post: (path: string, form: Record<string, string>) => request('POST', path, form),
  };
}

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The form of a page: its action and hidden fields (values unescaped). */
export function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]*)"/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no form in the page:\n${html.slice(0, 500)}`);
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) {
    fields[match[1]!] = decode(match[2]!);
  }
  return { action: decode(action), fields };
}

/** The markup with every run of whitespace made one space, for matching across source line breaks. */
export const flat = (html: string) => html.replace(/\s+/g, ' ');

/** The opening tag of the element with this id (whitespace flattened). */
export function tagOf(html: string, id: string): string {
  const match = new RegExp(`<\\w+\\s[^>]*\\bid="${id}"[^>]*>`).exec(flat(html));
  if (!match) throw new Error(`no element #${id} in the page`);
  return match[0];
}

/** The text inside the element with this id (tags stripped, entities decoded). */
export function textOf(html: string, id: string): string | undefined {
  const match = new RegExp(`<(\\w+)[^>]*\\sid="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(html);
  return match
    ? decode(
        match[2]!
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .trim(),
      )
    : undefined;
}
