/**
 * RFC 8259 §4: a JSON object, as `JSON.parse` gives it (a plain object, not an array or null).
 * Parameters, arguments and messages read from the wire are checked with this one predicate.
 */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
