/**
 * DNS-rebinding protection (MCP 2025-11-25 transports, Security Warning): a request whose
 * `Origin` is present and not allowed gets 403. Requests without `Origin` (non-browser clients) pass.
 */
import { GatewayError } from './errors.ts';

/** Normalizes the allow-list (configured origins plus the public URL's own origin). */
export function createOriginPolicy(publicUrl: string, allowedOrigins: readonly string[]): (origin: string | undefined) => string | undefined {
  const allowed = new Set<string>([new URL(publicUrl).origin]);
  for (const o of allowedOrigins) {
    try {
      allowed.add(new URL(o).origin);
    } catch {
      allowed.add(o);
    }
  }
  /** Returns the allowed origin (for CORS), undefined when there was none; throws when not allowed. */
  return (origin) => {
    if (origin === undefined) return undefined;
    if (allowed.has(origin)) return origin;
    throw new GatewayError('forbidden_origin', 'Origin not allowed', { reason: `origin ${origin.slice(0, 100)}` });
  };
}
