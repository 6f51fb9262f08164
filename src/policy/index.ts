/**
 * Per-server policies (docs/policy.md): the gateway asks `createServerPolicy(server)` once per server at
 * start-up and then `decide`/`filterList` for every message. docs/policy.md has the semantics.
 */
import type { ServerConfig } from '../config/schema.ts';
import type { ServerPolicy } from './types.ts';
import { compilePolicy } from './engine.ts';

export type { Decision, PolicyRequest, ServerPolicy } from './types.ts';
export { CompiledPolicy, compilePolicy, type Explanation, type RuleTrace } from './engine.ts';
export { advertisedScopes, describeScopes } from './scopes.ts';
export { parsePolicyRequest, type ParsedRequest } from './request.ts';
export { policySchema, type PolicyConfig, type PolicyRule } from './schema.ts';

/** The policy of one server, or undefined when it has none (every authenticated call allowed). */
export function createServerPolicy(server: ServerConfig): ServerPolicy | undefined {
  return server.policy ? compilePolicy(server.policy) : undefined;
}
