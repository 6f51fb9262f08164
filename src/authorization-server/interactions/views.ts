/** The login, consent and error pages (accessible: labelled fields, real buttons, a lang). */
import { html, type Raw } from '../../kernel/html.ts';

export interface LoginView {
  action: string;
  csrf: string;
  clientName: string;
  username?: string;
  error?: string;
}

/** The sign-in form: fields labelled Username and Password, a Sign in button. */
export function loginPage(v: LoginView): Raw {
  return html`<h1>Sign in</h1>
<p>to continue to <strong>${v.clientName}</strong></p>
${v.error ? html`<p class="error" role="alert">${v.error}</p>` : html``}
<form method="post" action="${v.action}">
<input type="hidden" name="csrf" value="${v.csrf}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus value="${v.username ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`;
}

export interface ConsentScope {
  scope: string;
  description: string;
  tools: string[];
}

export interface ConsentView {
  action: string;
  csrf: string;
  username: string;
  clientName: string;
  /** The CIMD host, "registered by an administrator", or "unverified" (DCR). */
  clientOrigin: string;
  clientVerified: boolean;
  redirectHost: string;
  redirectIsLocal: boolean;
  resource: string;
  scopes: ConsentScope[];
  offlineAccess: boolean;
}

/** The consent form: client, identity, redirect host, resource, scopes with their tools; Allow and Deny. @see MCP 2025-11-25 Security Best Practices §Confused Deputy */
export function consentPage(v: ConsentView): Raw {
  const scopeItems = v.scopes.map((s) => html`<li><strong>${s.description}</strong> <code>${s.scope}</code>${
    s.tools.length ? html`<br>Tools: ${s.tools.join(', ')}` : html``}</li>`);
  return html`<h1>Allow access?</h1>
<p>Signed in as <strong>${v.username}</strong>.</p>
<dl>
<dt>Application</dt><dd id="client-name">${v.clientName}</dd>
<dt>Client identity</dt><dd id="client-origin"${v.clientVerified ? html`` : html` class="warn"`}>${v.clientOrigin}</dd>
<dt>Will return you to</dt><dd id="redirect-host">${v.redirectHost}${v.redirectIsLocal ? html` <span class="warn">(an application on this computer)</span>` : html``}</dd>
<dt>MCP server</dt><dd id="resource"><code>${v.resource}</code></dd>
</dl>
<p>It asks to:</p>
<ul id="scopes">${scopeItems}${v.offlineAccess ? html`<li><strong>Stay signed in</strong> <code>offline_access</code></li>` : html``}</ul>
<form method="post" action="${v.action}">
<input type="hidden" name="csrf" value="${v.csrf}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`;
}

/** A plain error page body. */
export function errorPage(title: string, message: string): Raw {
  return html`<h1>${title}</h1><p role="alert">${message}</p>`;
}
