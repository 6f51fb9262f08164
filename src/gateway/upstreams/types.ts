/**
 * What the Streamable HTTP front needs from an upstream MCP server, stdio or HTTP: a per-session
 * connection that takes client messages and reports every message the server sends, whatever
 * stream it arrived on. The front routes them (by id, by progressToken) to the right client stream.
 */
import type { Caller } from '../../kernel/caller.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';

export interface UpstreamEvents {
  /** A message from the server: a response, a request or a notification. */
  message(message: JsonRpcMessage): void;
  /** The upstream ended (child exited, upstream session gone); the MCP session ends with it. */
  closed(reason: string): void;
}

export interface UpstreamConnection {
  /**
   * Sends client messages. Resolves once the upstream has accepted them; what it answers
   * arrives through `UpstreamEvents.message`.
   * @throws UpstreamError when the upstream refused or could not be reached
   */
  send(messages: JsonRpcMessage[], protocolVersion: string | undefined, caller: Caller): Promise<void>;
  /** Asks for the server's own message stream (HTTP: GET). Idempotent. */
  openServerStream(protocolVersion: string | undefined): void;
  /**
   * Ends the upstream side of the session (kills the child / DELETEs the upstream session).
   * `keepSession` (HTTP, cluster): close this instance's connection only, the upstream session
   * lives on for the other instances serving it.
   */
  close(options?: { keepSession?: boolean }): Promise<void>;
}

export interface UpstreamConnectContext {
  sessionId: string;
  caller: Caller;
  events: UpstreamEvents;
  /** HTTP (cluster): continue this upstream session, opened by another instance, instead of starting one. */
  upstreamSessionId?: string | undefined;
  /**
   * HTTP (cluster): told the upstream's session ID as soon as the upstream gives it, before its
   * answer reaches the client, so the directory knows it before the client's next request.
   */
  upstreamSessionStarted?: ((upstreamSessionId: string) => Promise<void>) | undefined;
}

export interface Upstream {
  connect(ctx: UpstreamConnectContext): Promise<UpstreamConnection>;
  /** Shuts shared resources (HTTP connection pools). */
  close(): Promise<void>;
}

/**
 * An upstream failure. `message` is what the client may see (a JSON-RPC error message): a generic
 * sentence, never a system or library message (MCP 2025-11-25 Security Best Practices: no internal
 * addresses or ports reach the client). `reason` keeps the detail for the log only.
 */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  /** Log-only detail (e.g. `connect ECONNREFUSED 10.0.3.7:8080`); never sent to the client. */
  readonly reason: string | undefined;
  constructor(message: string, readonly status?: number, options: { reason?: string } = {}) {
    super(message);
    this.reason = options.reason;
  }
}
