/** One authorization decision, as recorded: who, what, the decision and the rule that made it. */
export interface AuditEvent {
  /** ISO 8601 time of the decision. */
  time: string;
  subject: string;
  clientId: string;
  roles: string[];
  /** The server's configured name. */
  server: string;
  /** JSON-RPC method, or `http` for a decision made before any message was read (e.g. 401). */
  method: string;
  /** Tool name, resource URI or prompt name, when the method has one. */
  target: string | null;
  decision: 'allow' | 'deny';
  /** The rule that decided, or null for a default or a gateway-level check. */
  rule: string | null;
  reason: string;
  /** Decision latency in microseconds. */
  latencyUs: number;
  /** Tool arguments: redacted unless configured otherwise. */
  arguments?: unknown;
  sessionId?: string | null;
  /**
   * How many decisions this event stands for, when more than one: unauthenticated denials are
   * folded per (server, reason, remote address) over `audit.unauthenticatedWindowSeconds`.
   */
  count?: number;
  /** The peer address of the TCP connection, recorded for unauthenticated denials. */
  remoteAddress?: string;
}

export interface AuditSink {
  record(event: AuditEvent): void;
  close(): Promise<void>;
}
