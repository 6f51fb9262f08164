/**
 * Who is calling: the verified facts of an access token, as the gateway, the policy engine,
 * audit and downstream credentials see them. Built only by token verification.
 */

/**
 * What a decision is made on: the verified claims of an access token, without the token itself.
 * The policy engine and audit receive a `Principal`, so a pure decision can never read, log or
 * leak the bearer credential (RFC 6750 §5.3: bearer tokens are not to be disclosed).
 */
export interface Principal {
  /** `sub` of the access token: the user, or the client itself for client credentials. */
  subject: string;
  /** `client_id` (RFC 9068 §2.2) of the OAuth client that obtained the token. */
  clientId: string;
  /** `iss` of the token. */
  issuer: string;
  /** The canonical URI of the MCP endpoint the token was issued for (one of its `aud`). */
  audience: string;
  /** Granted scopes (RFC 9068 §2.2.3 `scope`). */
  scopes: string[];
  /** The user's roles (`roles` claim, or the configured claim path for external issuers). */
  roles: string[];
  /** Every verified claim, for policy conditions on claims. */
  claims: Readonly<Record<string, unknown>>;
  /** `exp`, in seconds since the epoch. */
  expiresAt: number;
}

/** A principal with the access token it was verified from: what the gateway and downstream credentials hold. */
export interface Caller extends Principal {
  /**
   * The inbound access token itself. Only for use as the RFC 8693 `subject_token` of a token
   * exchange at the authorization server: it is never forwarded upstream and never logged.
   */
  readonly accessToken: string;
}

const principals = new WeakMap<Caller, Principal>();

/**
 * The principal of a caller, as its own object without the access token: what the policy engine
 * and audit are handed, so the token is not even reachable from them at run time. One object per
 * caller (verified callers are cached by token, so this allocates once per token).
 */
export function principalOf(caller: Caller): Principal {
  let p = principals.get(caller);
  if (!p) {
    p = { subject: caller.subject, clientId: caller.clientId, issuer: caller.issuer, audience: caller.audience, scopes: caller.scopes, roles: caller.roles, claims: caller.claims, expiresAt: caller.expiresAt };
    principals.set(caller, p);
  }
  return p;
}
