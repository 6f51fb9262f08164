/**
 * The Authorization header of a confidential client calling an authorization server's endpoint
 * (token exchange, introspection) with `client_secret_basic`.
 * @see RFC 6749 §2.3.1: the client_id and secret are form-urlencoded (Appendix B) before Basic encoding.
 */
export function clientSecretBasic(clientId: string, clientSecret: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}
