/**
 * CSRF tokens for the login and consent forms: HMAC(secret, interaction uid + step). The
 * interaction uid is already bound to the browser by oidc-provider's interaction cookie; the
 * token additionally proves the POST came from our own rendered form.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Issue and verify per-interaction, per-step form tokens. @see OWASP CSRF cheat sheet (HMAC-based tokens) */
export function createCsrf(secret: string) {
  const mac = (uid: string, step: string) => createHmac('sha256', secret).update(`csrf\u0000${uid}\u0000${step}`).digest('base64url');
  return {
    issue: mac,
    verify(uid: string, step: string, presented: string | undefined): boolean {
      if (typeof presented !== 'string') return false;
      const expected = Buffer.from(mac(uid, step));
      const actual = Buffer.from(presented);
      return expected.length === actual.length && timingSafeEqual(expected, actual);
    },
  };
}
