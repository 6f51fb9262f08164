/**
 * What the steps of one MCP endpoint share: its configuration, its collaborators and its
 * sessions. Built once per endpoint by server-endpoint.ts; each step reads from it.
 */
import type { IncomingMessage } from 'node:http';
import type { DecisionRecorder } from '../../audit/decision.ts';
import type { Config, ServerConfig } from '../../config/schema.ts';
import type { DownstreamCredentials } from '../../downstream/types.ts';
import type { Caller } from '../../kernel/caller.ts';
import type { Logger } from '../../log.ts';
import type { ServerPolicy } from '../../policy/types.ts';
import type { Session } from '../session.ts';
import type { SessionRegistry } from '../session-registry.ts';
import type { TokenVerifier } from '../token-verifier.ts';
import type { ServerResponse } from 'node:http';
import type { ProtocolVersion } from '../protocol-version.ts';
import type { Upstream } from '../upstreams/types.ts';

export interface EndpointContext {
  readonly config: Config;
  readonly server: ServerConfig;
  /** RFC 9728 metadata URL of this server (every challenge names it). */
  readonly resourceMetadataUrl: string;
  readonly verifier: TokenVerifier;
  readonly upstream: Upstream;
  readonly policy: ServerPolicy | undefined;
  readonly downstream: DownstreamCredentials;
  readonly log: Logger;
  /** The audit call: one decision, named fields. */
  readonly record: DecisionRecorder;
  /** The client's address through trusted proxies only (unauthenticated denials are folded by it). */
  readonly clientAddress: (req: IncomingMessage) => string | undefined;
  /** Returns the allowed Origin (for CORS) or undefined; throws forbidden_origin. */
  readonly checkOrigin: (origin: string | undefined) => string | undefined;
  readonly sessions: SessionRegistry<Session>;
  /** The latest verified caller of each session: upstream messages and downstream credentials are asked for with it. */
  readonly callers: WeakMap<Session, Caller>;
  /** Sessions shared with the other instances (`cluster.redis`); absent for one instance. */
  readonly sharing?: SessionSharing | undefined;
  /**
   * The instance is stopping (src/http/drain.ts): no session is opened, and every answer made
   * from now on closes its connection (RFC 9112 §9.6).
   */
  stopping: boolean;
}

/**
 * MCP sessions shared with the other instances of a deployment (`cluster.redis`): what an endpoint
 * asks of them. Implemented in src/cluster/session-routing.ts; absent for one instance.
 */
export interface SessionSharing {
  readonly instanceId: string;
  /**
   * The sending instance of a verified hop, undefined for a client's request.
   * @throws GatewayError forbidden_hop (403) for a `Warden-Hop` header that does not verify
   */
  verifyHop(req: IncomingMessage): string | undefined;
  /**
   * Serves a request whose session is held elsewhere (src/cluster/session-routing.ts): true when a peer
   * answered it; false when the local pipeline goes on (the session is here now, or it answers
   * 400/404 as for one instance).
   * @throws GatewayError session_not_found (404), session_directory_unavailable (503), invalid_message (410)
   */
  route(ctx: EndpointContext, req: IncomingMessage, res: ServerResponse, caller: Caller, header: ProtocolVersion | undefined, hopFrom: string | undefined): Promise<boolean>;
  /** The upstream, with the hook that tells the directory an HTTP upstream's session ID. */
  wrap(upstream: Upstream, ctx: () => EndpointContext): Upstream;
  /** A session opened here: written to the directory (before the client learns its ID). */
  opened(session: Session): Promise<void>;
  /** A session served here: its directory entry is refreshed, at most every quarter of the idle timeout (never per request). */
  touched(session: Session): void;
  /** Ends the sessions of this endpoint for shutdown: stdio ones end, HTTP ones are only detached. */
  closeAll(ctx: EndpointContext): Promise<void>;
}

/** What an endpoint tells the cluster about itself. */
export interface SessionSharingEndpoint {
  kind: 'stdio' | 'http';
  idleMs: number;
  log: Logger;
}

/** Builds the SessionSharing of one endpoint (app.ts passes the cluster's). */
export type SessionSharingFactory = (endpoint: SessionSharingEndpoint) => SessionSharing;

/** Microseconds since `started` (a `performance.now()` value), for audit latencies. */
export function elapsedUs(started: number): number {
  return Math.round((performance.now() - started) * 1000);
}
