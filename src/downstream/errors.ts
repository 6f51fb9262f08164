/**
 * The one error type of downstream credentials. `message` is safe to show the MCP client (it
 * names what to do, never a secret); `reason` is for the operator's log only.
 *
 * The gateway renders it where it calls `envFor`/`headersFor`: as a JSON-RPC error on
 * `initialize` (stdio) or an HTTP error with `status` (HTTP upstream), never as a crashed child.
 */
export type DownstreamErrorCode =
  /** The user has no stored secret for this server and there is no fallback. */
  | 'credential_missing'
  /** The token exchange at the authorization server was refused or failed. */
  | 'exchange_failed'
  /** Stored secrets cannot be decrypted (wrong or missing key, tampered row). */
  | 'secrets_unavailable';

export class DownstreamCredentialError extends Error {
  override name = 'DownstreamCredentialError';
  readonly code: DownstreamErrorCode;
  /** HTTP status for an HTTP rendering: 403 (no credential), 502 (the authorization server failed). */
  readonly status: number;
  /** For logs only: may name the server and user, never holds a secret or token. */
  readonly reason: string;

  constructor(code: DownstreamErrorCode, message: string, reason: string, status = code === 'credential_missing' ? 403 : 502) {
    super(message);
    this.code = code;
    this.status = status;
    this.reason = reason;
  }
}

/** A problem with the secrets key found at start-up or by the CLI: stop with this message. */
export class SecretsKeyError extends Error {
  override name = 'SecretsKeyError';
}
