/**
 * The login, consent and error pages (accessible: labelled fields, real buttons, a lang).
 * A client's name is shown as a claim unless an administrator registered the client: with an
 * "unverified" badge, next to what is verified (the metadata document's host, the redirect
 * host), and with a warning when it imitates a pre-registered client's name (client-name.ts).
 */
import { html, type Raw } from '../../kernel/html.ts';

/** Who a client is, as far as the authorization server knows. */
export interface ClientClaim {
  /** `client_name`, or the client_id when it has none. */
  name: string;
  /** pre-registered: by an administrator; metadata-document: CIMD (https client_id); self-registered: DCR. */
  kind: 'pre-registered' | 'metadata-document' | 'self-registered';
  /** CIMD: the host that serves the client's metadata document (verified by fetching it). */
  documentHost?: string;
  /** The pre-registered client's name this one imitates. */
  imitates?: string;
}

/** Where the authorization response goes: what the user can actually check. */
export interface RedirectTarget {
  /** host[:port], or the private-use scheme. */
  host: string;
  /** A loopback address or a private-use scheme: an application on this computer. */
  local: boolean;
}

export interface LoginView {
  action: string;
  csrf: string;
  client: ClientClaim;
  redirect: RedirectTarget;
  username?: string;
  error?: string;
}

/** The client's name, as an administrator's fact or as the application's own claim. */
function clientNameView(c: ClientClaim): Raw {
  if (c.kind === 'pre-registered') return html`<strong id="client-name">${c.name}</strong>`;
  return html`<span id="client-name">${c.name}</span> <span id="client-badge" class="warn">(unverified: the name is the application's own claim)</span>`;
}

function imitationWarning(c: ClientClaim): Raw {
  if (!c.imitates) return html``;
  return html`<p class="error" role="alert" id="imitation-warning">Warning: this name looks like “${c.imitates}”, an application your administrator registered, but this is a different application${
    c.documentHost ? html` described by ${c.documentHost}` : html``}. Continue only if you started this sign-in yourself and trust where it returns you.</p>`;
}

function identityView(c: ClientClaim): Raw {
  if (c.kind === 'metadata-document') return html`described by <strong>${c.documentHost ?? ''}</strong>`;
  if (c.kind === 'pre-registered') return html`registered by an administrator`;
  return html`registered itself: unverified`;
}

function redirectView(r: RedirectTarget): Raw {
  return html`<strong>${r.host}</strong>${r.local ? html` <span class="warn">(an application on this computer)</span>` : html``}`;
}

/** The sign-in form: fields labelled Username and Password, a Sign in button. */
export function loginPage(v: LoginView): Raw {
  return html`<h1>Sign in</h1>
<p>to continue to ${clientNameView(v.client)}</p>
${imitationWarning(v.client)}
<dl>
<dt>Client identity</dt><dd id="client-origin"${v.client.kind === 'self-registered' ? html` class="warn"` : html``}>${identityView(v.client)}</dd>
<dt>Will return you to</dt><dd id="redirect-host">${redirectView(v.redirect)}</dd>
</dl>
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
  client: ClientClaim;
  redirect: RedirectTarget;
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
${imitationWarning(v.client)}
<dl>
<dt>Application</dt><dd>${clientNameView(v.client)}</dd>
<dt>Client identity</dt><dd id="client-origin"${v.client.kind === 'self-registered' ? html` class="warn"` : html``}>${identityView(v.client)}</dd>
<dt>Will return you to</dt><dd id="redirect-host">${redirectView(v.redirect)}</dd>
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
