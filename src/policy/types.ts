/**
 * The contract between the gateway and the policy engine (docs/policy.md). The gateway calls these
 * for every JSON-RPC message a client sends and for every list result on the way back.
 */
import type { Principal } from '../kernel/caller.ts';

export interface PolicyRequest {
  /** The server's configured name. */
  server: string;
  /** JSON-RPC method, e.g. `tools/call`. */
  method: string;
  /** JSON-RPC params as received (untrusted; the engine only reads from it). */
  params: unknown;
}

export type Decision =
  | { effect: 'allow'; rule: string | null; reason: string; target?: string | null }
  | {
      effect: 'deny';
      rule: string | null;
      reason: string;
      /** The request's tool name, resource URI or prompt name as the policy read it (the audit `target`); null for plain methods. */
      target?: string | null;
      /**
       * When a scope the caller could be granted would allow this operation: every scope the
       * operation needs (the union with what the caller already has), for a 403 insufficient_scope
       * step-up challenge. Absent when no scope would help (e.g. a role is missing).
       */
      stepUpScopes?: string[];
    };

export interface ServerPolicy {
  decide(caller: Principal, request: PolicyRequest): Decision;
  /** Returns the list result with only the items this caller may use; `result` is not mutated. */
  filterList(caller: Principal, method: string, result: unknown): unknown;
}
