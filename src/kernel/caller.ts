/**
 * Who is calling: the verified facts of an access token, as the gateway, the policy engine,
 * audit and downstream credentials see them. Built only by token verification.
 */
export interface Caller {
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
  /**
   * The inbound access token itself. Only for use as the RFC 8693 `subject_token` of a token
   * exchange at the authorization server: it is never forwarded upstream and never logged.
   */
  readonly accessToken: string;
}
