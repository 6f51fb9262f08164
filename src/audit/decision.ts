/**
 * The audit call of the gateway: one decision, named fields. The recorder fills what every event
 * of a server shares (time, server name), redacts tool arguments (redact.ts) and never lets a
 * failing sink reach the request path.
 */
import type { Principal } from '../kernel/caller.ts';
import type { Logger } from '../log.ts';
import { redactArguments } from './redact.ts';
import { auditTime } from './time.ts';
import type { AuditEvent, AuditSink } from './types.ts';

/** One authorization decision as the gateway reports it. */
export interface DecisionRecord {
  /** Who asked; absent when no valid token was presented. */
  caller?: Principal | undefined;
  /** JSON-RPC method, or `http` for a decision made before any message was read (e.g. 401). */
  method: string;
  /** Tool name, resource URI or prompt name, when the method has one. */
  target?: string | null;
  decision: 'allow' | 'deny';
  /** The policy rule that decided, or null for a default or a gateway-level check. */
  rule?: string | null;
  reason: string;
  /** Decision latency in microseconds. */
  latencyUs?: number;
  sessionId?: string | null;
  /** Tool or prompt arguments as received: redacted here unless `audit.includeArguments`. */
  arguments?: unknown;
  /** The client's address (through trusted proxies only): unauthenticated denials are folded by it. */
  remoteAddress?: string | undefined;
}

export type DecisionRecorder = (record: DecisionRecord) => void;

export interface DecisionRecorderOptions {
  sink: AuditSink;
  /** The server's configured name. */
  server: string;
  /** `audit.includeArguments`. */
  includeArguments: boolean;
  /** Where a failing sink is reported. */
  logger: Logger;
}

/** Builds the `record({ caller, method, … })` function of one server. */
export function createDecisionRecorder(options: DecisionRecorderOptions): DecisionRecorder {
  const { sink, server, includeArguments, logger } = options;
  return (r) => {
    const event: AuditEvent = {
      time: auditTime(),
      subject: r.caller?.subject ?? '',
      clientId: r.caller?.clientId ?? '',
      roles: r.caller?.roles ?? [],
      server,
      method: r.method,
      target: r.target ?? null,
      decision: r.decision,
      rule: r.rule ?? null,
      reason: r.reason,
      latencyUs: r.latencyUs ?? 0,
      sessionId: r.sessionId ?? null,
    };
    if (r.arguments !== undefined) event.arguments = redactArguments(r.arguments, includeArguments);
    // Unauthenticated denials are folded per remote address (unauthenticated.ts).
    if (r.remoteAddress !== undefined) event.remoteAddress = r.remoteAddress;
    try {
      sink.record(event);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'audit sink failed');
    }
  };
}
