/**
 * The `client_id` of a client registered dynamically (RFC 7591 §3.2.1: the server chooses it).
 * 128 random bits in base64url (oidc-provider's default, a nanoid, has 126), and never beginning
 * with `-` or `_`. An ID beginning with `-` is read as an option on a command line
 * (`mcp-warden consents revoke --client <id>` stops with "argument is ambiguous"), so one in 64
 * registered clients could not be named there without `--client=<id>`.
 */
import { randomBytes } from 'node:crypto';

/** @see https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1 */
export function generateClientId(random: (size: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = random(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}
