/**
 * What every instance reads from Redis (channel messages, directory entries) is untrusted text
 * (docs/deployment.md: whoever can write the prefix's keys can send anything): each reader first
 * takes it as a JSON object here, then checks every member it uses.
 */
import { isJsonObject } from '../kernel/json-object.ts';

/** The JSON text's top-level object, or undefined for anything else (not JSON, an array, null, a scalar). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return isJsonObject(value) ? value : undefined;
}
