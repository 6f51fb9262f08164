/**
 * The decision engine of one server's policy: (caller, request) → decision and the rule that
 * made it. Pure: no I/O, no clock, no randomness; rules are compiled once by `compilePolicy`.
 *
 * Order of evaluation (docs/policy.md):
 *  1. A request that cannot be checked (no tool name, a URI with dot segments…) is denied.
 *  2. Rules that name the request are evaluated, in order. A rule applies when all of its
 *     conditions hold. `first-match`: the first rule that applies decides. `deny-overrides`: a
 *     deny rule that applies wins over any allow rule; otherwise an allow rule that applies allows.
 *  3. No rule applies: the policy's `default` decides for tools, resources and prompts, and for
 *     methods some rule names; a method no rule names is not subject to policy and is allowed.
 *  4. On deny, step-up (MCP 2025-11-25 §Scope Challenge Handling): if an allow rule whose other
 *     conditions hold lacks only scopes, and the caller's scopes plus those would be allowed, the
 *     decision carries `stepUpScopes`, the union, for a 403 insufficient_scope challenge.
 *
 * Decisions are remembered per principal and (method, target) when they cannot depend on the
 * call's arguments (no rule naming the request has an `arguments` condition): a principal is built
 * once per verified token and never changes, so the same question gets the same answer. A hit
 * returns the frozen decision made the first time, without parsing the request or allocating.
 */
import { LRUCache } from 'lru-cache';
import type { Principal } from '../kernel/caller.ts';
import type { Decision, PolicyRequest, ServerPolicy } from './types.ts';
import { parsePolicyRequest, templateSample, hasDotSegments, type ParsedRequest, type TargetKind } from './request.ts';
import { MAX_MATCHED_LENGTH } from './glob.ts';
import {
  compileRule,
  hasScopes,
  identityFailure,
  missingScopes,
  names,
  type ArgumentsMode,
  type CompiledRule,
  type IdentityCondition,
} from './rule.ts';
import type { PolicyConfig } from './schema.ts';
import { LIST_FIELDS } from './lists.ts';
import { isJsonObject } from '../kernel/json-object.ts';

interface Outcome {
  effect: 'allow' | 'deny';
  rule: CompiledRule | null;
  /** `rule`: a rule applied; `default`: the policy default; `unnamed`: a method no rule names. */
  by: 'rule' | 'default' | 'unnamed';
}

/** Why one rule did or did not apply, for `mcp-warden explain`. */
export interface RuleTrace {
  name: string;
  effect: 'allow' | 'deny';
  /** The rule names this request (one of its tools/resources/prompts/methods matches). */
  names: boolean;
  /** The first condition other than scopes that does not hold. */
  failed: IdentityCondition | null;
  missingScopes: string[];
  applies: boolean;
}

export interface Explanation {
  decision: Decision;
  request: ParsedRequest;
  rules: RuleTrace[];
}

/** Distinct (method, target) pairs whose naming rules are remembered. */
const NAMED_CACHE_SIZE = 4096;
/** Decisions remembered per principal; targets come from clients, so the map is emptied when full. */
const DECISIONS_PER_PRINCIPAL = 1024;

/** One principal's remembered decisions: method → target ('' for a method without one) → decision. */
interface DecisionMemo {
  size: number;
  readonly byMethod: Map<string, Map<string, Decision>>;
}

/**
 * The memo key of a request, read from its params without allocating, or undefined when its
 * decision is not remembered (completion/complete and resources/unsubscribe are rare and read
 * nested params; a name that parsePolicyRequest would refuse takes the full path, which says why).
 * The key must determine everything parsePolicyRequest reads apart from tool or prompt arguments.
 */
function memoKey(method: string, params: unknown): string | undefined {
  switch (method) {
    case 'tools/call':
    case 'prompts/get': {
      if (!isJsonObject(params)) return undefined;
      const name = params.name;
      const args = params.arguments;
      if (typeof name !== 'string' || name === '' || name.length > MAX_MATCHED_LENGTH) return undefined;
      return args === undefined || isJsonObject(args) ? name : undefined;
    }
    case 'resources/read':
    case 'resources/subscribe': {
      if (!isJsonObject(params)) return undefined;
      const uri = params.uri;
      return typeof uri === 'string' && uri !== '' ? uri : undefined;
    }
    case 'resources/unsubscribe':
    case 'completion/complete':
      return undefined;
    default:
      return '';
  }
}

/** Freezes a decision (and its step-up scopes) so a remembered one can be handed out again and again. */
function freezeDecision(decision: Decision): Decision {
  if (decision.effect === 'deny' && decision.stepUpScopes) Object.freeze(decision.stepUpScopes);
  return Object.freeze(decision);
}

function noun(request: ParsedRequest): string {
  return request.kind === 'method' ? 'method' : request.kind;
}

function union(granted: readonly string[], more: readonly string[]): string[] {
  const out = [...granted];
  for (const s of more) if (!out.includes(s)) out.push(s);
  return out;
}

// Reasons a caller sees: they say what is refused and what would help, never which rule or user.
const IDENTITY_REASONS: Record<IdentityCondition, (n: string) => string> = {
  roles: (n) => `this ${n} requires a role you do not have`,
  claims: (n) => `this ${n} is not available to your account`,
  clients: (n) => `this ${n} is not available to this client`,
  clientHosts: (n) => `this ${n} is not available to this client`,
  arguments: (n) => `these arguments are not allowed for this ${n}`,
};

export class CompiledPolicy implements ServerPolicy {
  readonly mode: PolicyConfig['mode'];
  readonly defaultEffect: PolicyConfig['default'];
  readonly lists: PolicyConfig['lists'];
  readonly rules: readonly CompiledRule[];
  // The rules naming a (method, target), in order: matching names against every rule's globs is
  // most of a decision's cost, and a server has few distinct targets. Bounded, because targets
  // come from clients.
  readonly #named = new LRUCache<string, readonly CompiledRule[]>({ max: NAMED_CACHE_SIZE });
  /** Remembered decisions per principal (see the header); gone with the principal. */
  readonly #decisions = new WeakMap<Principal, DecisionMemo>();

  constructor(config: PolicyConfig) {
    this.mode = config.mode;
    this.defaultEffect = config.default;
    this.lists = config.lists;
    this.rules = config.rules.map(compileRule);
  }

  #rulesNaming(request: ParsedRequest): readonly CompiledRule[] {
    // The kind is part of the key: completion/complete names prompts and resource templates alike.
    const key = request.target === null || request.kind === 'method' ? request.method : `${request.method}\n${request.kind}\n${request.target}`;
    let found = this.#named.get(key);
    if (!found) {
      found = this.rules.filter((rule) => names(rule, request));
      this.#named.set(key, found);
    }
    return found;
  }

  #evaluate(caller: Principal, scopes: readonly string[], request: ParsedRequest, argsMode: ArgumentsMode): Outcome {
    const named = this.#rulesNaming(request);
    let firstAllow: CompiledRule | null = null;
    for (const rule of named) {
      if (!hasScopes(rule, scopes) || identityFailure(rule, caller, request, argsMode) !== null) continue;
      if (this.mode === 'first-match' || rule.effect === 'deny') return { effect: rule.effect, rule, by: 'rule' };
      firstAllow ??= rule;
    }
    if (firstAllow) return { effect: 'allow', rule: firstAllow, by: 'rule' };
    if (request.kind === 'method' && named.length === 0) return { effect: 'allow', rule: null, by: 'unnamed' };
    return { effect: this.defaultEffect, rule: null, by: 'default' };
  }

  /** The scopes that would turn this deny into an allow, or undefined when no scope would. */
  #stepUp(caller: Principal, request: ParsedRequest, argsMode: ArgumentsMode): string[] | undefined {
    for (const rule of this.#rulesNaming(request)) {
      if (rule.effect !== 'allow') continue;
      if (hasScopes(rule, caller.scopes) || identityFailure(rule, caller, request, argsMode) !== null) continue;
      const scopes = union(caller.scopes, rule.scopes);
      if (this.#evaluate(caller, scopes, request, argsMode).effect === 'allow') return scopes;
    }
    return undefined;
  }

  #denyReason(caller: Principal, request: ParsedRequest, outcome: Outcome): string {
    const n = noun(request);
    if (outcome.rule?.reason) return outcome.rule.reason;
    if (outcome.by === 'default') {
      for (const rule of this.#rulesNaming(request)) {
        if (rule.effect !== 'allow') continue;
        const failed = identityFailure(rule, caller, request, 'known');
        if (failed) return IDENTITY_REASONS[failed](n);
      }
    }
    return `this ${n} is not allowed by the server's policy`;
  }

  /** @see MCP 2025-11-25 basic/authorization §Scope Challenge Handling (403 insufficient_scope). */
  decide(caller: Principal, policyRequest: PolicyRequest): Decision {
    return this.decideMessage(caller, policyRequest.method, policyRequest.params);
  }

  /** `decide` for one JSON-RPC message's method and params. A remembered decision is frozen. */
  decideMessage(caller: Principal, method: string, params: unknown): Decision {
    const key = memoKey(method, params);
    const memo = key === undefined ? undefined : this.#decisions.get(caller);
    const known = memo?.byMethod.get(method)?.get(key!);
    if (known !== undefined) return known;
    const request = parsePolicyRequest(method, params);
    const decision = this.#decideParsed(caller, request);
    if (key === undefined || !this.#argumentFree(request)) return decision;
    return this.#remember(caller, memo, method, key, decision);
  }

  /** Whether no rule naming the request looks at arguments (so its decision holds for any arguments). */
  #argumentFree(request: ParsedRequest): boolean {
    if (request.malformed) return true;
    for (const rule of this.#rulesNaming(request)) if (rule.arguments.length) return false;
    return true;
  }

  #remember(caller: Principal, memo: DecisionMemo | undefined, method: string, key: string, decision: Decision): Decision {
    if (!memo) {
      memo = { size: 0, byMethod: new Map() };
      this.#decisions.set(caller, memo);
    } else if (memo.size >= DECISIONS_PER_PRINCIPAL) {
      memo.byMethod.clear();
      memo.size = 0;
    }
    let byTarget = memo.byMethod.get(method);
    if (!byTarget) {
      byTarget = new Map();
      memo.byMethod.set(method, byTarget);
    }
    const frozen = freezeDecision(decision);
    byTarget.set(key, frozen);
    memo.size++;
    return frozen;
  }

  #decideParsed(caller: Principal, request: ParsedRequest): Decision {
    return { ...this.#judge(caller, request), target: request.target };
  }

  #judge(caller: Principal, request: ParsedRequest): Decision {
    if (request.malformed) return { effect: 'deny', rule: null, reason: request.malformed };
    const outcome = this.#evaluate(caller, caller.scopes, request, 'known');
    if (outcome.effect === 'allow') {
      const reason = outcome.by === 'rule'
        ? `allowed by rule "${outcome.rule!.name}"`
        : outcome.by === 'unnamed' ? `${request.method} is not subject to the policy` : 'allowed by the policy default';
      return { effect: 'allow', rule: outcome.rule?.name ?? null, reason };
    }
    const stepUp = this.#stepUp(caller, request, 'known');
    if (stepUp) {
      const missing = stepUp.filter((s) => !caller.scopes.includes(s));
      return {
        effect: 'deny',
        rule: outcome.rule?.name ?? null,
        reason: `this ${noun(request)} needs scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}, which the access token lacks`,
        stepUpScopes: stepUp,
      };
    }
    return { effect: 'deny', rule: outcome.rule?.name ?? null, reason: this.#denyReason(caller, request, outcome) };
  }

  /** Whether a list should show this item to the caller (arguments are not known yet). */
  #visible(caller: Principal, method: string, kind: TargetKind, target: string): boolean {
    const request: ParsedRequest = { method, kind, target, args: undefined };
    if (this.#evaluate(caller, caller.scopes, request, 'unknown').effect === 'allow') return true;
    return this.lists === 'usable-or-step-up' && this.#stepUp(caller, request, 'unknown') !== undefined;
  }

  /**
   * Keeps only the items the caller may use; every other field (`nextCursor`, `_meta`, `ttlMs`)
   * is kept, so pagination works on the filtered pages, except that a 2026-07-28 `cacheScope`
   * becomes `private`. Items without a readable name are dropped.
   * @see MCP 2025-11-25 server/utilities/pagination
   */
  filterList(caller: Principal, method: string, result: unknown): unknown {
    const spec = Object.hasOwn(LIST_FIELDS, method) ? LIST_FIELDS[method] : undefined;
    if (!spec || result === null || typeof result !== 'object') return result;
    const items = (result as Record<string, unknown>)[spec.key];
    if (!Array.isArray(items)) return result;
    const kept = items.filter((item: unknown) => {
      if (item === null || typeof item !== 'object') return false;
      const value = (item as Record<string, unknown>)[spec.field];
      if (typeof value !== 'string') return false;
      const target = spec.template ? templateSample(value) : value;
      if (spec.kind === 'resource' && hasDotSegments(target)) return false;
      return this.#visible(caller, spec.method, spec.kind, target);
    });
    const out: Record<string, unknown> = { ...(result as Record<string, unknown>), [spec.key]: kept };
    // MCP 2026-07-28 cacheable results (SEP-2549): a filtered list is for this caller only, so it
    // must never be served from a shared cache. Older results carry no cache fields; none is added.
    if ('cacheScope' in out) out.cacheScope = 'private';
    return out;
  }

  /** The decision plus, for each rule, whether it names the request and why it did not apply. */
  explain(caller: Principal, policyRequest: PolicyRequest): Explanation {
    const request = parsePolicyRequest(policyRequest.method, policyRequest.params);
    const decision = this.#decideParsed(caller, request);
    const rules = this.rules.map((rule): RuleTrace => {
      const named = names(rule, request);
      const failed = named ? identityFailure(rule, caller, request, 'known') : null;
      const missing = named ? missingScopes(rule, caller.scopes) : [];
      return { name: rule.name, effect: rule.effect, names: named, failed, missingScopes: missing, applies: named && !failed && missing.length === 0 };
    });
    return { decision, request, rules };
  }
}

/** Compiles a policy section. @see docs/policy.md */
export function compilePolicy(config: PolicyConfig): CompiledPolicy {
  return new CompiledPolicy(config);
}
