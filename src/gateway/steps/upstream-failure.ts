/**
 * What a client learns when the upstream MCP server fails: that it failed, and the session ID to
 * quote to an operator; never the cause. Causes name internal addresses, ports and library
 * messages (`connect ECONNREFUSED 10.0.3.7:8080`): they go to the log with the session ID (MCP
 * 2025-11-25 security best practices; RFC 9700 §4.15 on error messages revealing internals).
 * Downstream-credential errors are the exception: their message is written for the client and
 * says what to do (docs/downstream.md).
 */
import { DownstreamCredentialError } from '../../downstream/errors.ts';
import type { Logger } from '../../log.ts';
import { UpstreamError } from '../upstreams/types.ts';

/** The client-facing message of an upstream failure in session `sessionId`. */
export function upstreamFailureMessage(sessionId: string): string {
  return `the upstream MCP server failed (session ${sessionId})`;
}

/** Logs the cause with the session ID and returns the message for the client. */
export function reportUpstreamFailure(log: Logger, sessionId: string, err: unknown, what: string): string {
  if (err instanceof DownstreamCredentialError) {
    log.warn({ sessionId, code: err.code, reason: err.reason }, 'downstream credentials unavailable');
    return err.message;
  }
  // An UpstreamError keeps the cause apart from its (client-safe) message; log the cause.
  const reason = err instanceof UpstreamError && err.reason !== undefined ? `${err.message}: ${err.reason}` : err instanceof Error ? err.message : String(err);
  log.warn({ sessionId, reason }, what);
  return upstreamFailureMessage(sessionId);
}
