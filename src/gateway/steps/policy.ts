/**
 * Step 8, policy (docs/policy.md): every request and notification a client sends is decided
 * before anything of the POST is forwarded, so one step-up answer covers the whole POST. A denial
 * the caller could lift with more scopes is 403 insufficient_scope (MCP 2025-11-25 authorization
 * §Scope Challenge Handling); any other denial is answered for that message alone with the
 * JSON-RPC error FORBIDDEN_CODE. Every decision is audited, with the tool or prompt arguments
 * redacted by the recorder. On the way back, list results keep only what the caller may use.
 */
import type { ServerResponse } from 'node:http';
import { principalOf, type Caller } from '../../kernel/caller.ts';
import type { ServerPolicy } from '../../policy/types.ts';
import { GatewayError } from '../errors.ts';
import { Exchange, type ListFilter } from '../exchange.ts';
import { errorResponse, isNotification, isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts';
import type { Cors } from './edge.ts';
import { elapsedUs, type EndpointContext } from './context.ts';

/** JSON-RPC error code of a message the policy refuses (the implementation-defined server error range, JSON-RPC 2.0 §5.1). */
export const FORBIDDEN_CODE = -32003;

/**
 * The messages the policy denies, each with its reason; an empty map when all are allowed.
 * @throws GatewayError insufficient_scope (403) when more scopes would allow a denied message
 */
export function decideMessages(ctx: EndpointContext, caller: Caller, messages: readonly JsonRpcMessage[], sessionId: string | null): ReadonlyMap<JsonRpcMessage, string> {
  // The map is made only for a denial: an allowed POST shares NONE_DENIED.
  let denied: Map<JsonRpcMessage, string> | undefined;
  const { policy } = ctx;
  if (!policy) return NONE_DENIED;
  const principal = principalOf(caller);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (!isRequest(m) && !isNotification(m)) continue;
    const started = performance.now();
    const decision = policy.decide(principal, { server: ctx.server.name, method: m.method, params: m.params });
    const latencyUs = elapsedUs(started);
    const args = m.method === 'tools/call' || m.method === 'prompts/get' ? (m.params as { arguments?: unknown } | undefined)?.arguments : undefined;
    ctx.record({ caller: principal, method: m.method, target: decision.target ?? null, decision: decision.effect, rule: decision.rule, reason: decision.reason, latencyUs, sessionId, arguments: args });
    if (decision.effect === 'allow') continue;
    if (decision.stepUpScopes?.length) throw new GatewayError('insufficient_scope', decision.reason, { scope: decision.stepUpScopes });
    (denied ??= new Map()).set(m, decision.reason);
  }
  return denied ?? NONE_DENIED;
}

const NONE_DENIED: ReadonlyMap<JsonRpcMessage, string> = new Map();

/**
 * The list filter for answers to this caller (policy `lists`), or undefined without a policy: the
 * engine and the caller's principal, one object per (policy, principal), made on first use.
 */
export function filterLists(ctx: EndpointContext, caller: Caller): ListFilter | undefined {
  const { policy } = ctx;
  if (!policy) return undefined;
  const principal = principalOf(caller);
  let byPrincipal = filters.get(policy);
  if (!byPrincipal) filters.set(policy, (byPrincipal = new WeakMap()));
  let filter = byPrincipal.get(principal);
  if (!filter) byPrincipal.set(principal, (filter = { policy, principal }));
  return filter;
}

const filters = new WeakMap<ServerPolicy, WeakMap<object, ListFilter>>();

/** A denied `initialize` is answered here with FORBIDDEN_CODE: no session is opened and no `Mcp-Session-Id` sent. */
export function answerDeniedInitialize(ctx: EndpointContext, a: { res: ServerResponse; cors: Cors; caller: Caller; acceptsSse: boolean; initialize: JsonRpcRequest; reason: string }): void {
  new Exchange(a.res, a.acceptsSse, false, a.cors, filterLists(ctx, a.caller)).answerLocally(errorResponse(a.initialize.id, FORBIDDEN_CODE, `Forbidden: ${a.reason}`));
}
