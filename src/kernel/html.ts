/**
 * The one HTML shell of every page mcp-warden serves (sign-in, consent, error, account, the
 * native client's loopback callback): no scripts, no external assets, one inline stylesheet
 * allowed by a per-response nonce, and one set of security headers. Every interpolated value is
 * escaped here.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/** Escapes text for HTML element and attribute content. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A tagged template whose interpolations are escaped unless wrapped in `raw()`. */
export interface Raw { readonly raw: string }
export const raw = (html: string): Raw => ({ raw: html });
export function html(strings: TemplateStringsArray, ...values: Array<string | number | Raw | Raw[]>): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => {
    const part = Array.isArray(v) ? v.map((r) => r.raw).join('') : typeof v === 'object' ? v.raw : escapeHtml(String(v));
    out += part + strings[i + 1]!;
  });
  return raw(out);
}

export const PAGE_STYLE = `body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:28rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0 .3rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;border:1px solid #8a93a6;border-radius:4px}
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;border-radius:4px;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1d2330;border-color:#8a93a6;margin-left:.5rem}
.error{background:#fde8e8;color:#8a1c1c;padding:.6rem;border-radius:4px}.warn{color:#8a5a00}
dl dt{font-weight:600;margin-top:.6rem}dl dd{margin-left:0}ul{padding-left:1.2rem}code{font-size:.9em}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}`;

/**
 * The security headers every page carries, for a stylesheet nonce.
 * - CSP: nothing loads but the one nonce'd inline stylesheet (and same-origin or data: images);
 *   no framing (clickjacking of the consent page), no `<base>`. No form-action: after the consent
 *   POST the browser follows redirects to the client's redirect_uri, which form-action would
 *   block in Chromium.
 * - Referrer-Policy `same-origin`: no Referer ever leaves our origin (the interaction URL, the
 *   client's redirect with its `code`), which is what no-referrer protects; no-referrer itself
 *   makes Chromium send `Origin: null` on our own form posts, which the interaction routes'
 *   Origin check (defence in depth next to the CSRF token) would then refuse.
 * - `no-store`: pages carry CSRF tokens and user names (RFC 9111 §5.2.2.5).
 */
export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Content-Security-Policy': `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
  };
}

/** A rendered page: its headers (security headers included) and its document. */
export interface RenderedPage {
  headers: Record<string, string>;
  body: string;
}

/**
 * Renders `body` inside the shell. For callers that write the response themselves (Koa
 * contexts, the client's loopback listener): set every header in `headers`, then send `body`.
 */
export function renderPage(title: string, body: Raw): RenderedPage {
  const nonce = randomBytes(16).toString('base64');
  const document = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<title>${escapeHtml(title)}</title><style nonce="${nonce}">${PAGE_STYLE}</style></head><body><main>${body.raw}</main></body></html>`;
  return { headers: pageHeaders(nonce), body: document };
}

/** Sends a page in the shell with its security headers (plus `extraHeaders`, e.g. Retry-After). */
export function sendPage(res: ServerResponse, status: number, title: string, body: Raw, extraHeaders: Record<string, string> = {}): void {
  const page = renderPage(title, body);
  res.statusCode = status;
  for (const [k, v] of Object.entries({ ...page.headers, ...extraHeaders })) res.setHeader(k, v);
  res.end(page.body);
}

/** The body of a plain message page: a heading and one paragraph (announced to screen readers). */
export function messagePage(title: string, message: string): Raw {
  return html`<h1>${title}</h1><p role="alert">${message}</p>`;
}
