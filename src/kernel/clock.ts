/**
 * Time, with its unit in its name. Two units meet in mcp-warden, and mixing them up in a token
 * lifetime is a security bug (a token believed valid 1000 times too long), so no clock is a bare
 * `now` across a unit boundary:
 * - `nowSeconds`: seconds since the epoch, RFC 7519 §2 NumericDate — JWT `iat`/`exp`/`nbf`,
 *   RFC 7662 introspection, RFC 8693 token exchange, identity assertions.
 * - milliseconds (`now`, `nowMs`, `Date.now`): everything else — storage expiry, the
 *   authorization server's models, audit, sessions, rate limits, the client.
 */

/** Seconds since the epoch (RFC 7519 §2 NumericDate); may be fractional only where a caller asks for it. */
export type NowSeconds = () => number;
/** Milliseconds since the epoch. */
export type NowMs = () => number;

/** The system clock in whole seconds (RFC 7519 NumericDate). */
export const systemNowSeconds: NowSeconds = () => Math.floor(Date.now() / 1000);
