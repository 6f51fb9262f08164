/**
 * One policy rule, compiled once at start-up: globs become matchers, role and client lists become
 * Sets, claim and argument names are split into paths. Evaluating a rule then allocates nothing.
 */
import { compileGlobs, MAX_MATCHED_LENGTH, type Matcher } from './glob.ts';
import { hasDotSegments } from './request.ts';
import { readClaim } from './claim-path.ts';
import type { ParsedRequest } from './request.ts';
import type { ArgumentCondition, ClaimCondition, PolicyRule } from './schema.ts';
import type { Principal } from '../kernel/caller.ts';

/** The conditions a rule can put on a caller, apart from scopes. */
export type IdentityCondition = 'roles' | 'claims' | 'clients' | 'clientHosts' | 'arguments';

type Scalar = string | number | boolean | null;

interface ValueTest {
  readonly path: readonly string[];
  readonly name: string;
  readonly test: (value: unknown) => boolean;
}

export interface CompiledRule {
  readonly index: number;
  readonly name: string;
  readonly effect: 'allow' | 'deny';
  readonly reason: string | undefined;
  readonly tools: Matcher | undefined;
  readonly resources: Matcher | undefined;
  readonly prompts: Matcher | undefined;
  readonly methods: Matcher | undefined;
  readonly scopes: readonly string[];
  readonly roles: ReadonlySet<string> | undefined;
  readonly claims: readonly ValueTest[];
  readonly clients: ReadonlySet<string> | undefined;
  readonly clientHosts: Matcher | undefined;
  readonly arguments: readonly ValueTest[];
  readonly source: PolicyRule;
}

/** How argument conditions are treated: list filtering does not know a call's arguments yet. */
export type ArgumentsMode = 'known' | 'unknown';

function claimTest(condition: ClaimCondition): (value: unknown) => boolean {
  if ('equals' in condition) return (v) => v === condition.equals;
  if ('in' in condition) {
    const allowed: readonly Scalar[] = condition.in;
    return (v) => allowed.includes(v as Scalar);
  }
  const needle = condition.contains;
  return (v) => Array.isArray(v) && v.includes(needle);
}

/**
 * A path argument is within `prefix` when it is absolute, has no `.`/`..` segments, backslashes
 * or NULs, and equals the prefix or continues it after a `/`. Paths that would need resolving
 * are refused rather than normalized: the upstream may resolve them differently.
 */
function pathPrefixTest(prefix: string, effect: 'allow' | 'deny'): (value: unknown) => boolean {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return (v) => {
    if (typeof v !== 'string') return false;
    // A path we cannot judge without resolving it (or too long to match) is outside an allow
    // rule's prefix and inside a deny rule's: both fail closed.
    if (!v.startsWith('/') || /[\\\0]/.test(v) || /(^|\/)\.{1,2}(\/|$)/.test(v) || v.length > MAX_MATCHED_LENGTH) return effect === 'deny';
    return v === base || v.startsWith(`${base}/`) || (base === '' && v.startsWith('/'));
  };
}

/**
 * Whether a string is one a glob cannot judge: longer than the matcher looks at, or holding
 * RFC 3986 §5.2.4 dot segments (`/tmp/../etc/passwd`), `%2e` or control characters that the
 * upstream may resolve into something else. Such a value matches a deny rule's glob and never an
 * allow rule's, so neither can be bypassed by it (fail closed).
 */
function unjudgeable(value: string): boolean {
  return value.length > MAX_MATCHED_LENGTH || hasDotSegments(value);
}

function argumentTest(condition: ArgumentCondition, effect: 'allow' | 'deny'): (value: unknown) => boolean {
  if ('equals' in condition) return (v) => v === condition.equals;
  if ('in' in condition) {
    const allowed: readonly Scalar[] = condition.in;
    return (v) => allowed.includes(v as Scalar);
  }
  if ('prefix' in condition) {
    const prefix = condition.prefix;
    return (v) => typeof v === 'string' && v.startsWith(prefix);
  }
  if ('pathPrefix' in condition) return pathPrefixTest(condition.pathPrefix, effect);
  const glob = compileGlobs([condition.glob]);
  return (v) => typeof v === 'string' && (unjudgeable(v) ? effect === 'deny' : glob.test(v));
}

/** Compiles one validated rule (its index is its place in the policy's order). */
export function compileRule(rule: PolicyRule, index: number): CompiledRule {
  return {
    index,
    name: rule.name,
    effect: rule.effect,
    reason: rule.reason,
    tools: rule.tools && compileGlobs(rule.tools),
    resources: rule.resources && compileGlobs(rule.resources),
    prompts: rule.prompts && compileGlobs(rule.prompts),
    methods: rule.methods && compileGlobs(rule.methods),
    scopes: rule.scopes ?? [],
    roles: rule.roles && new Set(rule.roles),
    claims: Object.entries(rule.claims ?? {}).map(([name, c]) => ({ name, path: name.split('.'), test: claimTest(c) })),
    clients: rule.clients && new Set(rule.clients),
    // RFC 3986 §3.2.2: host names are case-insensitive.
    clientHosts: rule.clientHosts && compileGlobs(rule.clientHosts, { caseInsensitive: true }),
    arguments: Object.entries(rule.arguments ?? {}).map(([name, c]) => ({ name, path: [name], test: argumentTest(c, rule.effect) })),
    source: rule,
  };
}

/** Whether the rule is about this request at all (any of its target lists matches). */
export function names(rule: CompiledRule, request: ParsedRequest): boolean {
  if (rule.methods?.test(request.method)) return true;
  const target = request.target;
  if (target === null) return false;
  switch (request.kind) {
    case 'tool':
      return rule.tools?.test(target) ?? false;
    case 'resource':
      return rule.resources?.test(target) ?? false;
    case 'prompt':
      return rule.prompts?.test(target) ?? false;
    default:
      return false;
  }
}

/**
 * The host of a URL client_id (a client ID metadata document, draft-ietf-oauth-client-id-metadata-document §3),
 * or undefined for any other client_id.
 */
export function clientHostOf(clientId: string): string | undefined {
  if (!clientId.startsWith('https://')) return undefined;
  try {
    return new URL(clientId).hostname;
  } catch {
    return undefined;
  }
}

/** The first condition other than scopes that does not hold, or null when all hold. */
export function identityFailure(rule: CompiledRule, caller: Principal, request: ParsedRequest, argsMode: ArgumentsMode): IdentityCondition | null {
  if (rule.roles) {
    let any = false;
    for (const role of caller.roles) {
      if (rule.roles.has(role)) {
        any = true;
        break;
      }
    }
    if (!any) return 'roles';
  }
  for (const claim of rule.claims) {
    if (!claim.test(readClaim(caller.claims, claim.name, claim.path))) return 'claims';
  }
  if (rule.clients && !rule.clients.has(caller.clientId)) return 'clients';
  if (rule.clientHosts) {
    const host = clientHostOf(caller.clientId);
    if (host === undefined || !rule.clientHosts.test(host)) return 'clientHosts';
  }
  if (rule.arguments.length) {
    if (argsMode === 'unknown') {
      // Listing: an allow rule may apply for some arguments; a deny rule only for some, so it
      // does not hide the item.
      if (rule.effect === 'deny') return 'arguments';
    } else {
      const args = request.args;
      if (!args) return 'arguments';
      for (const arg of rule.arguments) {
        if (!Object.hasOwn(args, arg.name) || !arg.test(args[arg.name])) return 'arguments';
      }
    }
  }
  return null;
}

/** Scopes the rule needs that `granted` lacks. */
export function missingScopes(rule: CompiledRule, granted: readonly string[]): string[] {
  const missing: string[] = [];
  for (const scope of rule.scopes) if (!granted.includes(scope)) missing.push(scope);
  return missing;
}

export function hasScopes(rule: CompiledRule, granted: readonly string[]): boolean {
  for (const scope of rule.scopes) if (!granted.includes(scope)) return false;
  return true;
}
