import { html, layout } from './html.js';

export interface EnrollView {
  enrollmentId: string;
  username: string;
  /** The otpauth URI's QR code, an SVG document. */
  qrSvg: string;
  /** The base32 key, for typing it in by hand. */
  secret: string;
  algorithm: string;
  digits: number;
  period: number;
  issuer: string;
  csrfToken: string;
  returnTo?: string | undefined;
  error?: string | undefined;
}

/** `ABCD EFGH …`: the manual key in groups of four, as authenticator apps show it. */
export function groupKey(secret: string): string {
  return secret.match(/.{1,4}/g)?.join(' ') ?? secret;
}

function enrollUrl(view: { enrollmentId: string; returnTo?: string | undefined }): string {
  const qs = view.returnTo ? `?${new URLSearchParams({ returnTo: view.returnTo }).toString()}` : '';
  return `/enroll/${encodeURIComponent(view.enrollmentId)}${qs}`;
}

/** Set up the authenticator: scan the QR code (or type the key), then prove it with a code. */
export function renderEnroll(view: EnrollView): string {
  const qr = `data:image/svg+xml;base64,${Buffer.from(view.qrSvg, 'utf8').toString('base64')}`;
  const describedBy = view.error ? 'code-hint code-error' : 'code-hint';
  const body = html`<h1>Set up your authenticator</h1>
    <p>One authenticator entry protects <strong>${view.username}</strong> in every app of your company.</p>
    <ol class="steps">
      <li>
        <p>
          Open an authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, …) and scan
          this QR code.
        </p>
        <img
          class="qr"
          src="${qr}"
          width="220"
          height="220"
          alt="QR code of your twofold key. If you cannot scan it, type the key shown below into your app."
        />
      </li>
      <li>
        <p id="manual-key-label">Can't scan it? Add an entry by hand with this key:</p>
        <p class="key" id="manual-key" aria-labelledby="manual-key-label">${groupKey(view.secret)}</p>
        <dl class="details">
          <dt>Account</dt>
          <dd>${view.username}</dd>
          <dt>Issuer</dt>
          <dd>${view.issuer}</dd>
          <dt>Type</dt>
          <dd>time-based, ${view.digits} digits, every ${view.period} s, ${view.algorithm}</dd>
        </dl>
      </li>
      <li>
        <form method="post" action="${enrollUrl(view)}" novalidate>
          <input type="hidden" name="_csrf" value="${view.csrfToken}" />
          ${view.returnTo ? html`<input type="hidden" name="returnTo" value="${view.returnTo}" />` : ''}
          <label for="code">Code your app shows now</label>
          <p class="hint" id="code-hint">
            Type the ${view.digits}-digit code to confirm the app has the key.
          </p>
          <input
            type="text"
            id="code"
            name="code"
            required
            maxlength="16"
            inputmode="numeric"
            autocomplete="one-time-code"
            spellcheck="false"
            autocapitalize="off"
            aria-describedby="${describedBy}"
            ${view.error ? html` aria-invalid="true" autofocus` : html``}
          />
          ${view.error ? html`<p class="error" id="code-error" role="alert">${view.error}</p>` : ''}
          <button type="submit">Confirm</button>
        </form>
      </li>
    </ol>`;
  return layout({ title: 'Set up your authenticator', body, error: Boolean(view.error) });
}

/** The backup codes, shown this once, and the way back to the app. */
export function renderEnrolled(view: {
  username: string;
  backupCodes: readonly string[];
  returnTo?: string | undefined;
  appName?: string | undefined;
}): string {
  const body = html`<h1 class="success">Your authenticator is set up</h1>
    <p>From now on, <strong>${view.username}</strong> confirms sign-ins with a code from the app.</p>
    <h2 id="backup-heading">Your backup codes</h2>
    <p>
      If you lose your phone, each of these codes works once instead of a code from the app.
      <strong
        >Save them now somewhere safe (a password manager, or printed): they are not shown again.</strong
      >
    </p>
    <ol class="codes" id="backup-codes" aria-labelledby="backup-heading">
      ${view.backupCodes.map((code) => html`<li><code>${code}</code></li> `)}
    </ol>
    ${
      view.returnTo
        ? html`<p>
            <a class="button" href="${view.returnTo}"
              >I saved them, continue to ${view.appName ?? 'the app'}</a
            >
          </p>`
        : html`<p>When you have saved them, go back to ${view.appName ?? 'the app'} and sign in.</p>`
    }`;
  return layout({ title: 'Authenticator set up', body });
}
