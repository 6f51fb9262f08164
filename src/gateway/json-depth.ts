/**
 * A nesting limit for JSON text, checked on the raw bytes before `JSON.parse`.
 *
 * V8's `JSON.parse` is iterative, but everything after it is not: `JSON.stringify` (the stdio line
 * for the child, the HTTP body for an HTTP upstream), structured logging and schema validation
 * recurse once per level, so a 20 KB body nested 10 000 levels deep overflows the stack on the way
 * to the upstream. Refusing such a body at the edge (400, JSON-RPC -32600) keeps every later step
 * free of untrusted depth. MCP messages are shallow: the envelope, `params`, `arguments` and a
 * JSON Schema-shaped value inside them rarely reach 10 levels, so 64 leaves room for any tool
 * argument a person would design while staying far below the ~7 000 frames a stack allows.
 */

/** Default for `maxJsonDepth`: see the module comment for why 64. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/**
 * The deepest nesting of objects and arrays in JSON text, or `limit + 1` as soon as it exceeds
 * `limit` (the scan stops there). One pass over the bytes, no recursion, no allocation: UTF-8
 * continuation bytes are never ASCII, so brackets and quotes are found byte by byte. Brackets
 * inside strings do not count. Invalid JSON is not judged here: `JSON.parse` refuses it next.
 * @see https://www.rfc-editor.org/rfc/rfc8259#section-9 (implementations may limit nesting depth)
 */
export function jsonDepth(text: Uint8Array, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const b = text[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return deepest;
}

/** True when the JSON text nests objects and arrays deeper than `limit` (RFC 8259 §9). */
export function isTooDeep(text: Uint8Array, limit: number): boolean {
  return jsonDepth(text, limit) > limit;
}
