/**
 * Server-side HTML with escaping by default: every value interpolated into `html`…`` is
 * escaped unless it is itself the output of `html`. Pages never build markup by string
 * concatenation, so user input (usernames, returnTo, error text) cannot inject markup.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

export const STYLESHEET_PATH = '/assets/twofold.css';

/** The frame of every hosted page: language, viewport, one stylesheet, no script at all. */
export function layout(input: { title: string; body: Html; error?: boolean }): string {
  const title = input.error ? `Error: ${input.title}` : input.title;
  return `<!doctype html>\n${
    html`<html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${title} · twofold</title>
        <link rel="stylesheet" href="${STYLESHEET_PATH}" />
      </head>
      <body>
        <main>${input.body}</main>
        <footer><p>Protected by twofold, your company's second factor.</p></footer>
      </body>
    </html> `.value
  }`;
}

/**
 * The Content-Security-Policy of a hosted page: nothing but its own stylesheet and a data:
 * image (the QR code); no script; forms post to the page itself, and may be redirected only
 * to the app origin the page returns to.
 */
export function pageCsp(formTargets: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    `form-action 'self'${formTargets.map((o) => ` ${o}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}
