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
import { GatewayError } from '../errors.ts';
import { Exchange, type ResponseTransform } from '../exchange.ts';
import { errorResponse, isNotification, isRequest, type JsonRpcMessage, type JsonRpcRequest } from '../jsonrpc.ts';
import type { Cors } from './edge.ts';
import { elapsedUs, type EndpointContext } from './context.ts';

/** JSON-RPC error code of a message the policy refuses (the implementation-defined server error range, JSON-RPC 2.0 §5.1). */
export const FORBIDDEN_CODE = -32003;

/**
 * The messages the policy denies, each with its reason; an empty map when all are allowed.
 * @throws GatewayError insufficient_scope (403) when more scopes would allow a denied message
 */
export function decideMessages(ctx: EndpointContext, caller: Caller, messages: readonly JsonRpcMessage[], sessionId: string | null): Map<JsonRpcMessage, string> {
  const denied = new Map<JsonRpcMessage, string>();
  const { policy } = ctx;
  if (!policy) return denied;
  const principal = principalOf(caller);
  for (const m of messages) {
    if (!isRequest(m) && !isNotification(m)) continue;
    const started = performance.now();
    const decision = policy.decide(principal, { server: ctx.server.name, method: m.method, params: m.params });
    const latencyUs = elapsedUs(started);
    const args = m.method === 'tools/call' || m.method === 'prompts/get' ? (m.params as { arguments?: unknown } | undefined)?.arguments : undefined;
    ctx.record({ caller: principal, method: m.method, target: decision.target ?? null, decision: decision.effect, rule: decision.rule, reason: decision.reason, latencyUs, sessionId, arguments: args });
    if (decision.effect === 'allow') continue;
    if (decision.stepUpScopes?.length) throw new GatewayError('insufficient_scope', decision.reason, { scope: decision.stepUpScopes });
    denied.set(m, decision.reason);
  }
  return denied;
}

/** The list filter for answers to this caller (policy `lists`), or the identity without a policy. */
export function filterLists(ctx: EndpointContext, caller: Caller): ResponseTransform {
  const { policy } = ctx;
  if (!policy) return (_method, response) => response;
  const principal = principalOf(caller);
  return (method, response) => ({ ...response, result: policy.filterList(principal, method, response.result) });
}

/** A denied `initialize` is answered here with FORBIDDEN_CODE: no session is opened and no `Mcp-Session-Id` sent. */
export function answerDeniedInitialize(ctx: EndpointContext, a: { res: ServerResponse; cors: Cors; caller: Caller; acceptsSse: boolean; initialize: JsonRpcRequest; reason: string }): void {
  new Exchange(a.res, a.acceptsSse, false, a.cors, filterLists(ctx, a.caller)).answerLocally(errorResponse(a.initialize.id, FORBIDDEN_CODE, `Forbidden: ${a.reason}`));
}
