/**
 * Tool arguments in audit events. By default only their names are kept: values may hold personal
 * data or secrets. With `audit.includeArguments` values are kept, except those under names that
 * look like credentials, and large values are cut, so the audit trail never becomes a copy of
 * every payload or a store of secrets.
 */

export const REDACTED = '[redacted]';

const SECRET_NAME = /pass(word|phrase)?|secret|token|api[-_]?key|authorization|credential|cookie|private[-_]?key|session/i;
const MAX_STRING = 1024;
const MAX_DEPTH = 8;
const MAX_JSON = 16 * 1024;

function copy(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…[${value.length} chars]` : value;
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? String(value) : value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => copy(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_NAME.test(k) ? REDACTED : copy(v, depth + 1);
  return out;
}

/**
 * The last redacted arguments, by their names: calls of one tool repeat the same names, and then
 * the same frozen object is returned, so the audit writer serialises it once (batch-encoding.ts
 * keeps the JSON of the last arguments object), not once per call (~0.3 µs here, ~0.7 there).
 */
let lastNames: readonly string[] = [];
let lastRedacted: Readonly<Record<string, unknown>> = Object.freeze({});

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The arguments to record: with `include` false every value is replaced by "[redacted]" (the
 * argument names stay, they say what was asked for); with `include` true a copy whose
 * credential-like values are still redacted and whose long strings are cut. Redacted names come
 * back frozen, and the same object for the same names in the same order as the last call.
 */
export function redactArguments(args: unknown, include: boolean): unknown {
  if (args === undefined) return undefined;
  if (!include) {
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return REDACTED;
    const keys = Object.keys(args);
    if (sameNames(keys, lastNames)) return lastRedacted;
    // A loop, not entries/map: this runs for every audited tool call.
    const names: Record<string, unknown> = {};
    for (const k of keys) {
      // An own "__proto__" member (JSON.parse makes one) stays a member, as Object.fromEntries would keep it.
      if (k === '__proto__') Object.defineProperty(names, k, { value: REDACTED, enumerable: true, writable: true, configurable: true });
      else names[k] = REDACTED;
    }
    lastNames = keys;
    lastRedacted = Object.freeze(names);
    return lastRedacted;
  }
  const copied = copy(args, 0);
  const json = JSON.stringify(copied) ?? '';
  return json.length > MAX_JSON ? `[${json.length} bytes of arguments, not recorded]` : copied;
}
