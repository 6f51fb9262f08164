/**
 * The account pages: labelled fields, real buttons, no scripts; rendered through the
 * authorization server's page helpers so they carry the same CSP and headers as its login page.
 * A stored credential is never rendered, not even masked: only whether and when it was set.
 */
import { html, type Raw } from '../kernel/html.ts';

export interface ServerStatus {
  name: string;
  /** When this user's own credential was last set. */
  setAt?: Date;
  hasFallback: boolean;
}

/** "26 Nov 2026, 14:30 UTC": unambiguous for people anywhere. */
export function formatDate(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

function statusText(s: ServerStatus): string {
  if (s.setAt) return `Set on ${formatDate(s.setAt)}`;
  return s.hasFallback ? 'Not set: using the shared fallback' : 'Not set';
}

/** The page of one server's credential (the name is URL-encoded). */
export const secretPath = (server: string) => `/account/secrets/${encodeURIComponent(server)}`;

function notice(flash: string | undefined): Raw {
  return flash ? html`<p class="notice" role="status" id="notice">${flash}</p>` : html``;
}

function signOutForm(csrf: string): Raw {
  return html`<form method="post" action="/account/sign-out"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" class="secondary">Sign out</button></form>`;
}

/** The list of servers that take a per-user credential, with this user's status for each. */
export function overviewPage(v: { subject: string; servers: ServerStatus[]; csrf: string; flash?: string }): Raw {
  const rows = v.servers.map((s) => html`<tr><th scope="row">${s.name}</th><td id="status-${s.name}">${statusText(s)}</td>
<td><a href="${secretPath(s.name)}" aria-label="${s.setAt ? 'Replace or delete' : 'Set'} the credential for ${s.name}">${s.setAt ? 'Replace or delete' : 'Set'}</a></td></tr>`);
  return html`<h1>Your credentials</h1>
<p>Signed in as <strong id="subject">${v.subject}</strong>.</p>
${notice(v.flash)}
<p>These servers act for you with a credential of your own, such as an API key or access token. It is stored encrypted and is only ever given to your sessions; this page never shows it again.</p>
<table><thead><tr><th scope="col">Server</th><th scope="col">Your credential</th><th scope="col">Action</th></tr></thead>
<tbody>${rows}</tbody></table>
${signOutForm(v.csrf)}`;
}

/** Set or replace one server's credential; delete it when set. */
export function secretPage(v: { server: ServerStatus; csrf: string; error?: string }): Raw {
  const s = v.server;
  return html`<h1>Credential for ${s.name}</h1>
<p><a href="/account">Back to your credentials</a></p>
<p id="status">${statusText(s)}.</p>
${v.error ? html`<p class="error" role="alert" id="error">${v.error}</p>` : html``}
<form method="post" action="${secretPath(s.name)}">
<input type="hidden" name="csrf" value="${v.csrf}">
<label for="secret">${s.setAt ? 'New credential (replaces the stored one)' : 'Credential'}</label>
<input id="secret" name="secret" type="password" autocomplete="off" spellcheck="false" required aria-describedby="secret-help">
<p id="secret-help" class="help">Paste the API key or token for ${s.name}. Spaces around it are removed.</p>
<button type="submit">${s.setAt ? 'Replace' : 'Save'}</button>
</form>
${s.setAt ? html`<form method="post" action="${secretPath(s.name)}/delete"><input type="hidden" name="csrf" value="${v.csrf}">
<button type="submit" class="secondary">Delete stored credential</button></form>` : html``}`;
}

/** After sign-out: a way back in. */
export function signedOutPage(): Raw {
  return html`<h1>Signed out</h1><p>You have signed out of your account page.</p><p><a href="/account">Sign in again</a></p>`;
}

/** An error page with a way forward. */
export function problemPage(title: string, message: string, next: { href: string; label: string } = { href: '/account', label: 'Back to your credentials' }): Raw {
  return html`<h1>${title}</h1><p role="alert">${message}</p><p><a href="${next.href}">${next.label}</a></p>`;
}
