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
import type { Upstream } from '../upstreams/types.ts';
import type { EndpointSessionSharing } from '../../cluster/session-routing.ts';

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
  readonly sharing?: EndpointSessionSharing | undefined;
}

/** Microseconds since `started` (a `performance.now()` value), for audit latencies. */
export function elapsedUs(started: number): number {
  return Math.round((performance.now() - started) * 1000);
}
