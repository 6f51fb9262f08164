/**
 * RFC 8259 §4: a JSON object, as `JSON.parse` gives it (a plain object, not an array or null).
 * Parameters, arguments and messages read from the wire are checked with this one predicate.
 */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The JSON text's top-level object, or undefined for anything else (not JSON, an array, null, a
 * scalar). For untrusted text, e.g. what every instance reads from Redis (docs/deployment.md:
 * whoever can write the prefix's keys can send anything): the caller then checks every member it uses.
 */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isJsonObject(value) ? value : undefined;
}
