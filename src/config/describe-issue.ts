/**
 * Zod issues as sentences a person can act on: the exact key path, what was given, the type or
 * value expected. A union of one-key objects (`upstream: { stdio } | { http }`,
 * `authorizationServer: { embedded } | { external }`) is resolved by its discriminating key
 * first: `{ stdio: { args: "x" } }` is reported as a stdio problem (`stdio.args` must be an
 * array), and `{ embeded: {} }` as a misspelt `embedded`, not as "must be either … or …".
 */
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;
type Path = ReadonlyArray<PropertyKey>;

export function keyOf(path: Path): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

function valueAt(input: unknown, path: Path): unknown {
  let actual = input;
  for (const p of path) actual = actual && typeof actual === 'object' ? (actual as Record<PropertyKey, unknown>)[p] : undefined;
  return actual;
}

function shown(value: unknown): string {
  return value === undefined ? 'is missing' : `is ${JSON.stringify(value)?.slice(0, 80)}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', number: 'a number', int: 'an integer', boolean: 'true or false', array: 'a list (a YAML sequence or JSON array)',
  object: 'a mapping of keys to values', record: 'a mapping of keys to values',
};

/** Edit distance, for "did you mean". Small inputs only (config keys). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The key each branch of a one-key-object union requires: the key its issues say is missing. */
function branchKey(branch: Issue[], value: unknown): string | undefined {
  for (const issue of branch) {
    // The branch refused the other keys: its own is the one it did not refuse.
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0 && value && typeof value === 'object') {
      const own = Object.keys(value).filter((k) => !issue.keys.includes(k));
      if (own.length === 1) return own[0];
    }
    if (issue.path.length >= 1 && typeof issue.path[0] === 'string') {
      const key = issue.path[0];
      if (issue.code === 'invalid_type' && issue.path.length === 1 && valueAt(value, [key]) === undefined) return key;
      if (valueAt(value, [key]) !== undefined) return key;
    }
  }
  return undefined;
}

interface SchemaDef { type?: string; shape?: Record<string, unknown>; element?: unknown; innerType?: unknown; options?: unknown[]; in?: unknown }
const defOf = (schema: unknown): SchemaDef | undefined => (schema as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;

/**
 * The keys the object schema at `path` accepts (through arrays, defaults, optionals and, for a
 * union, the branch that has the key the input has), for "did you mean". Undefined if unknown.
 */
function keysAt(schema: unknown, path: Path, input: unknown): string[] | undefined {
  let def = defOf(schema);
  let value = input;
  const steps = [...path];
  for (let guard = 0; def && guard < 64; guard++) {
    if (def.innerType !== undefined) { def = defOf(def.innerType); continue; }
    if (def.type === 'pipe') { def = defOf(def.in); continue; }
    if (def.type === 'union') {
      const branch = (def.options ?? []).map(defOf).find((d) => {
        const inner = d?.innerType !== undefined ? defOf(d.innerType) : d;
        return inner?.shape && value && typeof value === 'object' && Object.keys(inner.shape).some((k) => Object.hasOwn(value as object, k));
      });
      if (!branch) return undefined;
      def = branch;
      continue;
    }
    if (steps.length === 0) return def.shape ? Object.keys(def.shape) : undefined;
    const step = steps.shift()!;
    value = value && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[step] : undefined;
    if (def.type === 'array') def = defOf(def.element);
    else if (def.shape && typeof step === 'string') def = defOf(def.shape[step]);
    else return undefined;
  }
  return undefined;
}

/** One line per problem, each naming its key path. `schema` (the root) lets unknown keys get a "did you mean". */
export function describeIssue(issue: Issue, input: unknown, prefix: Path = [], schema?: unknown): string[] {
  const path = [...prefix, ...issue.path];
  const key = keyOf(path);
  if (issue.code === 'unrecognized_keys') {
    const known = schema === undefined ? undefined : keysAt(schema, path, input);
    const near = (k: string) => known?.find((candidate) => distance(k, candidate) <= 2);
    if (issue.keys.some((k) => near(k))) {
      return issue.keys.map((k) => (near(k)
        ? `${keyOf([...path, k])}: unknown key "${k}"; did you mean "${near(k)}"?`
        : `${keyOf([...path, k])}: unknown key "${k}". Remove it or check the spelling (docs/configuration.md lists every key).`));
    }
    return [`${key}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}. Remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling (docs/configuration.md lists every key).`];
  }
  const actual = valueAt(input, path);
  if (issue.code === 'invalid_union') return describeUnion(issue, input, path, actual, schema);
  if (issue.code === 'invalid_type') {
    const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
    // A schema's own message (e.g. "must be an http(s) URL") says more than the type name.
    const own = issue.message.startsWith('Invalid input') ? '' : ` (${issue.message})`;
    return [`${key} ${shown(actual)}: expected ${expected}${own}`];
  }
  return [`${key} ${shown(actual)}: ${issue.message}`];
}

function describeUnion(issue: Extract<Issue, { code: 'invalid_union' }>, input: unknown, path: Path, actual: unknown, schema?: unknown): string[] {
  const key = keyOf(path);
  const branches = issue.errors;
  const keys = branches.map((b) => branchKey(b, actual));
  const isObject = actual !== null && typeof actual === 'object' && !Array.isArray(actual);
  if (branches.length === 0 || keys.some((k) => k === undefined) || !isObject) {
    if (!isObject && keys.every((k) => k !== undefined)) {
      return [`${key} ${shown(actual)}: expected a mapping with one of the keys ${keys.map((k) => `"${k}"`).join(' or ')}`];
    }
    return [`${key} ${shown(actual)}: ${issue.message}`];
  }
  const present = keys.filter((k) => Object.hasOwn(actual, k!)) as string[];
  if (present.length === 1) {
    // The discriminating key names the branch: report that branch's own problems, minus its
    // complaint about the other branches' keys.
    const branch = branches[keys.indexOf(present[0])]!;
    return branch.flatMap((i) => describeIssue(i, input, path, schema));
  }
  if (present.length > 1) {
    return [`${key} has ${present.map((k) => `"${k}"`).join(' and ')}: give exactly one of them`];
  }
  const given = Object.keys(actual);
  const lines = given.map((g) => {
    const near = (keys as string[]).find((k) => distance(g, k) <= 2);
    return near
      ? `${keyOf([...path, g])}: unknown key "${g}"; did you mean "${near}"?`
      : `${keyOf([...path, g])}: unknown key "${g}"; expected one of ${keys.map((k) => `"${k}"`).join(' or ')}`;
  });
  return lines.length ? lines : [`${key} is empty: give one of ${keys.map((k) => `"${k}"`).join(' or ')} (${issue.message})`];
}
