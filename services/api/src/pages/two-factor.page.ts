import { html, layout } from './html.js';

export interface CodePromptView {
  challengeId: string;
  username: string;
  appName: string;
  csrfToken: string;
  returnTo?: string | undefined;
  /** The backup-code variant: letters allowed, no numeric keyboard. */
  backup?: boolean;
  /** What was wrong with the last submission, shown beside the field. */
  error?: string | undefined;
}

function promptUrl(view: { challengeId: string; returnTo?: string | undefined }, backup: boolean): string {
  const query = new URLSearchParams();
  if (view.returnTo) query.set('returnTo', view.returnTo);
  if (backup) query.set('backup', '1');
  const qs = query.toString();
  return `/2fa/${encodeURIComponent(view.challengeId)}${qs ? `?${qs}` : ''}`;
}

/** The code prompt: one labelled field, its hint and (after a failure) its error, tied by aria-describedby. */
export function renderCodePrompt(view: CodePromptView): string {
  const backup = view.backup === true;
  const describedBy = view.error ? 'code-hint code-error' : 'code-hint';
  const body = html`<h1>Confirm it's you</h1>
    <p>You are signing in to <strong>${view.appName}</strong> as <strong>${view.username}</strong>.</p>
    <form method="post" action="${promptUrl(view, backup)}" novalidate>
      <input type="hidden" name="_csrf" value="${view.csrfToken}" />
      ${view.returnTo ? html`<input type="hidden" name="returnTo" value="${view.returnTo}" />` : ''}
      <label for="code">${backup ? 'Backup code' : 'Code from your authenticator app'}</label>
      <p class="hint" id="code-hint">
        ${
          backup
            ? 'One of the backup codes you saved when you set up your authenticator, like 3f7k2-9qd4m.'
            : 'The 6-digit code your authenticator app shows for twofold. It changes every 30 seconds.'
        }
      </p>
      <input
        type="text"
        id="code"
        name="code"
        required
        autofocus
        maxlength="32"
        spellcheck="false"
        autocapitalize="off"
        autocomplete="one-time-code"
        ${backup ? html`` : html` inputmode="numeric"`}
        aria-describedby="${describedBy}"
        ${view.error ? html` aria-invalid="true"` : html``}
      />
      ${view.error ? html`<p class="error" id="code-error" role="alert">${view.error}</p>` : ''}
      <button type="submit">Verify</button>
    </form>
    <p>
      <a href="${promptUrl(view, !backup)}"
        >${
          backup ? 'Use the code from your authenticator app instead' : 'Lost your phone? Use a backup code'
        }</a
      >
    </p>`;
  return layout({ title: 'Confirm it’s you', body, error: Boolean(view.error) });
}

/** After a verified code when there is no registered place to return to. */
export function renderVerified(view: { appName: string }): string {
  return layout({
    title: 'Verified',
    body: html`<h1 class="success">You're verified</h1>
      <p>
        Your second factor is confirmed for this sign-in. Go back to <strong>${view.appName}</strong>; you can
        close this tab.
      </p>
      <p>Other apps of your company that use the same sign-in will not ask again in this session.</p>`,
  });
}

/** A page that ends the flow: an expired link, a spent challenge, a lock, an outage. */
export function renderMessage(view: {
  title: string;
  message: string;
  action?: { href: string; label: string };
}): string {
  return layout({
    title: view.title,
    error: true,
    body: html`<h1>${view.title}</h1>
      <p role="alert">${view.message}</p>
      ${view.action ? html`<p><a class="button" href="${view.action.href}">${view.action.label}</a></p>` : ''}`,
  });
}
