/**
 * Rendering of oidc-provider errors, in one place. JSON errors are oidc-provider's own RFC 6749 /
 * 7591 / 7009 / 8707 bodies; here is the HTML page for errors that cannot be redirected to the
 * client (unknown client, unregistered redirect_uri): code and the library's exposed description
 * only, never a stack or an internal detail (server errors get a generic text).
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { escapeHtml } from '../kernel/html.ts';
import { randomBytes } from 'node:crypto';

/** The HTML error page of oidc-provider's renderError. @see RFC 6749 §4.1.2.1 (errors not redirected) */
export function renderErrorPage(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): void {
  const status = ctx.status >= 400 ? ctx.status : 400;
  const description = status >= 500 ? 'Something went wrong on our side. Please try again later.' : out.error_description ?? '';
  const nonce = randomBytes(16).toString('base64');
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', `default-src 'none'; style-src 'nonce-${nonce}'; frame-ancestors 'none'; base-uri 'none'`);
  ctx.set('X-Frame-Options', 'DENY');
  ctx.body = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Authorization error</title>`
    + `<style nonce="${nonce}">body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto}</style></head>`
    + `<body><main><h1>Authorization error</h1><p>The application sent a request this server cannot accept.</p>`
    + `<p><code id="error">${escapeHtml(out.error)}</code></p><p id="error_description">${escapeHtml(description)}</p></main></body></html>`;
}
