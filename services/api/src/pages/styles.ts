/**
 * The hosted pages' one stylesheet, served from /assets/twofold.css (a file, not inline, so
 * the CSP can forbid inline styles). Contrast meets WCAG AA; focus is always visible.
 */
export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1b1d21; --bg: #f6f7f9; --card: #ffffff; --muted: #4a5160;
  --accent: #0b57d0; --accent-fg: #ffffff; --error: #b3261e; --ok: #146c2e; --border: #c4c8d0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e8eaee; --bg: #15171b; --card: #1f2227; --muted: #b4bac6; --accent: #8ab4f8;
    --accent-fg: #0b1a33; --error: #f2b8b5; --ok: #7dd99a; --border: #4a4f59; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 30rem; margin: 3rem auto 1rem; padding: 2rem; background: var(--card);
  border: 1px solid var(--border); border-radius: 12px; }
footer { max-width: 30rem; margin: 0 auto 2rem; padding: 0 2rem; color: var(--muted); font-size: .875rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
p { margin: 0 0 1rem; }
form + p { margin-top: 1.25rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
.hint { color: var(--muted); font-size: .9375rem; margin-bottom: .5rem; }
input[type=text] { width: 100%; font: inherit; font-size: 1.5rem; letter-spacing: .2em; padding: .5rem .75rem;
  border: 2px solid var(--border); border-radius: 8px; background: var(--bg); color: var(--fg); }
input[aria-invalid=true] { border-color: var(--error); }
button, .button { display: inline-block; margin-top: 1rem; font: inherit; font-weight: 600; padding: .625rem 1.25rem;
  border: 0; border-radius: 8px; background: var(--accent); color: var(--accent-fg); cursor: pointer;
  text-decoration: none; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.error { color: var(--error); font-weight: 600; margin: .5rem 0 0; }
.success { color: var(--ok); }
.qr { display: block; width: 220px; height: 220px; margin: .5rem 0 1rem; background: #fff; image-rendering: pixelated; }
.key { font: 1.125rem/1.6 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; word-spacing: .25em;
  overflow-wrap: anywhere; }
ol.steps { padding-left: 1.25rem; }
ol.steps > li { margin-bottom: 1.25rem; }
ol.codes { columns: 2; font: 1.125rem/1.8 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
dl.details { display: grid; grid-template-columns: auto 1fr; gap: 0 1rem; color: var(--muted); font-size: .9375rem; }
dl.details dt { font-weight: 600; }
dl.details dd { margin: 0; }
`;
