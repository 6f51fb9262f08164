/**
 * The `servers[].policy` section: who may use which tools, resources, prompts and methods of one
 * MCP server. Composed into the configuration schema (src/config/schema.ts); every error names the
 * rule by its `name`, e.g. `servers.0.policy.rules.3: rule "admin-tools": …`, so an invalid policy
 * stops start-up with a message an operator can act on. docs/policy.md describes the semantics.
 */
import { z } from 'zod';

/** Most wildcards one pattern may hold: keeps the compiled RegExp's backtracking small. */
export const MAX_WILDCARDS = 8;

const pattern = z
  .string()
  .min(1, 'a pattern may not be empty')
  .max(512, 'a pattern has at most 512 characters')
  .refine((p) => (p.match(/\*+/g) ?? []).length <= MAX_WILDCARDS, { message: `a pattern may hold at most ${MAX_WILDCARDS} wildcards` });

function oneOrMany<T extends z.ZodType>(item: T) {
  return z
    .union([item, z.array(item).min(1, 'list at least one value, or leave the key out')], { error: 'must be a string or a list of strings' })
    .transform((v): z.output<T>[] => (Array.isArray(v) ? v : [v]));
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). "a b" is accepted as two tokens.
const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const scopes = z
  .union([z.string(), z.array(z.string()).min(1, 'list at least one scope, or leave the key out')], { error: 'must be a scope string or a list of scopes' })
  .transform((v) => (Array.isArray(v) ? v : v.split(' ').filter(Boolean)))
  .refine((list) => list.length > 0 && list.every((s) => scopeToken.test(s)), {
    message: 'a scope token has no spaces or quotes (RFC 6749 §3.3)',
  });

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** A condition on one claim of the access token: a bare value means `equals`. */
const claimCondition = z.union(
  [
    scalar.transform((equals) => ({ equals })),
    z.strictObject({ equals: scalar }),
    z.strictObject({ in: z.array(scalar).min(1) }),
    z.strictObject({ contains: scalar }),
  ],
  { error: 'a claim condition is a value, or { equals: v }, { in: [v, …] } or { contains: v }' },
);

/** A condition on one tool (or prompt) argument: a bare value means `equals`. */
const argumentCondition = z.union(
  [
    scalar.transform((equals) => ({ equals })),
    z.strictObject({ equals: scalar }),
    z.strictObject({ in: z.array(scalar).min(1) }),
    z.strictObject({ prefix: z.string().min(1) }),
    z.strictObject({ pathPrefix: z.string().regex(/^\//, 'a pathPrefix is an absolute path such as /public/') }),
    z.strictObject({ glob: pattern }),
  ],
  { error: 'an argument condition is a value, or { equals }, { in: […] }, { prefix }, { pathPrefix } or { glob }' },
);

const ruleName = z
  .string({ error: 'every rule needs a name (used in audit events and by `mcp-warden explain`)' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'a rule name is 1-64 letters, digits, ".", "_", ":" or "-"');

export const ruleSchema = z.strictObject({
  name: ruleName,
  description: z.string().optional(),
  /** What the rule does when it applies. */
  effect: z.enum(['allow', 'deny']).default('allow'),
  // What the rule is about: a request is named by a rule when one of these matches it.
  /** Tool names or globs, for `tools/call` (and the tools/list filter). */
  tools: oneOrMany(pattern).optional(),
  /** Resource URI patterns, for `resources/read`, `resources/subscribe` (and the resource list filters). */
  resources: oneOrMany(pattern).optional(),
  /** Prompt names or globs, for `prompts/get` (and the prompts/list filter). */
  prompts: oneOrMany(pattern).optional(),
  /** JSON-RPC method names or globs, e.g. `logging/setLevel`, `resources/*`. */
  methods: oneOrMany(pattern).optional(),
  // When the rule applies: every condition given must hold.
  /** Every one of these scopes must have been granted; a missing one is what step-up can fix. */
  scopes: scopes.optional(),
  /** The user must hold at least one of these roles. */
  roles: oneOrMany(z.string().min(1)).optional(),
  /** Every listed claim must satisfy its condition; dotted names reach into objects (`realm_access.roles`). */
  claims: z.record(z.string().min(1), claimCondition).optional(),
  /** The OAuth client_id must be one of these (exact match). */
  clients: oneOrMany(z.string().min(1)).optional(),
  /** The client_id must be an https URL (a client ID metadata document) whose host matches one of these globs. */
  clientHosts: oneOrMany(pattern).optional(),
  /** Every listed argument of the tool call or prompt must satisfy its condition. */
  arguments: z.record(z.string().min(1), argumentCondition).optional(),
  /** For deny rules: the message the caller sees. Say what is refused, not who may do it. */
  reason: z.string().max(200).optional(),
});

export type PolicyRule = z.output<typeof ruleSchema>;
export type ClaimCondition = z.output<typeof claimCondition>;
export type ArgumentCondition = z.output<typeof argumentCondition>;

function describeRule(rule: unknown, index: number): string {
  const name = rule && typeof rule === 'object' ? (rule as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name ? `rule "${name}"` : `rule #${index}`;
}

/** Checks a parsed rule against the rest of its own definition; returns the problems found. */
function validateRule(rule: PolicyRule): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  if (!rule.tools && !rule.resources && !rule.prompts && !rule.methods) {
    problems.push({ path: [], message: 'names no tools, resources, prompts or methods, so it would never apply; add one of them' });
  }
  if (rule.arguments && !rule.tools && !rule.prompts) {
    problems.push({ path: ['arguments'], message: 'argument conditions need tools or prompts to apply to' });
  }
  if (rule.reason && rule.effect !== 'deny') {
    problems.push({ path: ['reason'], message: 'a reason is shown when a deny rule refuses a call; it has no use on an allow rule' });
  }
  return problems;
}

const rules = z.array(z.unknown(), { error: 'must be a list of rules' }).transform((list, ctx) => {
  const out: PolicyRule[] = [];
  const seen = new Map<string, number>();
  list.forEach((raw, i) => {
    const label = describeRule(raw, i);
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const message = issue.code === 'unrecognized_keys'
          ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (docs/policy.md lists the keys of a rule)`
          : issue.message;
        ctx.addIssue({ code: 'custom', path: [i, ...issue.path], message: `${label}: ${message}`, input: raw });
      }
      return;
    }
    for (const problem of validateRule(parsed.data)) {
      ctx.addIssue({ code: 'custom', path: [i, ...problem.path], message: `${label}: ${problem.message}`, input: raw });
    }
    const earlier = seen.get(parsed.data.name);
    if (earlier !== undefined) {
      ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${label}: the name is already used by rule #${earlier}; rule names must be unique`, input: raw });
    }
    seen.set(parsed.data.name, i);
    out.push(parsed.data);
  });
  return out;
});

export const policySchema = z.strictObject({
  /**
   * `first-match`: rules are tried in order and the first that applies decides.
   * `deny-overrides`: any deny rule that applies wins; otherwise any allow rule that applies allows.
   */
  mode: z.enum(['first-match', 'deny-overrides']).default('first-match'),
  /** The decision when no rule applies to a tool, resource or prompt (and to a method some rule names). */
  default: z.enum(['allow', 'deny']).default('deny'),
  /**
   * Which items lists show: `usable` only what the caller may use with the scopes it holds;
   * `usable-or-step-up` also what it could use after a step-up for more scopes (so a client can
   * discover a tool, call it, and be asked for the scope: MCP 2025-11-25 "Step-Up Authorization Flow").
   */
  lists: z.enum(['usable', 'usable-or-step-up']).default('usable-or-step-up'),
  rules: rules.default([]),
});

export type PolicyConfig = z.output<typeof policySchema>;
