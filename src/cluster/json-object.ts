/**
 * What every instance reads from Redis (channel messages, directory entries) is untrusted text
 * (docs/deployment.md: whoever can write the prefix's keys can send anything): each reader first
 * takes it as a JSON object here, then checks every member it uses.
 */

/** The JSON text's top-level object, or undefined for anything else (not JSON, an array, null, a scalar). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
