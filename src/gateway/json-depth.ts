/**
 * A nesting limit for JSON text, checked on the raw bytes before `JSON.parse` (and, in the same
 * pass, what jsonrpc.ts needs to forward a client's text as written: its member count, whether
 * its numbers are plain, and whether it is all ASCII).
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
const COLON = 0x3a;
const MINUS = 0x2d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const DOT = 0x2e;
const PLUS = 0x2b;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
/**
 * Longest number token (sign, digits, point) called plain: 15 significant digits always
 * round-trip through an IEEE 754 double, so every parser reads such a number as JSON.parse does.
 */
const MAX_PLAIN_NUMBER = 15;

/** What one pass over JSON text learns about its shape (`scanShape`). */
export interface TextShape {
  /** The deepest nesting of objects and arrays, or `limit + 1` once it exceeds the limit (the pass stops there). */
  depth: number;
  /** How many member names the text holds: one `:` outside a string ends exactly one (RFC 8259 §4). */
  members: number;
  /** Every number is at most 15 characters and has no exponent (RFC 8259 §6: within double precision). */
  plainNumbers: boolean;
  /**
   * Every byte inside a string (but the one after each backslash) is ASCII, below 0x80. Once
   * `JSON.parse` has taken the text, that makes the whole text ASCII: JSON allows no other byte
   * outside strings, nor after a backslash. ASCII is its own UTF-8 encoding, so such bytes need no
   * UTF-8 check before they are forwarded in place of the text.
   */
  ascii: boolean;
}

/** The result of the last `scanShape` (one scan at a time on the main thread: nothing is allocated). */
const shape: TextShape = { depth: 0, members: 0, plainNumbers: true, ascii: true };

/**
 * Depth, member count, number form and ASCII-ness of JSON text in one pass over its bytes, with no recursion
 * and no allocation: UTF-8 continuation bytes are never ASCII, so brackets, quotes and colons are
 * found byte by byte, and nothing inside a string counts. Invalid JSON is not judged here:
 * `JSON.parse` refuses it next. The returned object is reused by the next call.
 * @see https://www.rfc-editor.org/rfc/rfc8259#section-9 (implementations may limit nesting depth)
 */
export function scanShape(text: Uint8Array, limit: number): Readonly<TextShape> {
  let depth = 0;
  let deepest = 0;
  let members = 0;
  let numberLength = 0;
  let plainNumbers = true;
  let inString = false;
  // The bits of every byte inside a string, OR-ed: no branch per byte for the ASCII check.
  let stringBits = 0;
  for (let i = 0; i < text.length; i++) {
    const b = text[i]!;
    if (inString) {
      stringBits |= b;
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if ((b >= DIGIT_0 && b <= DIGIT_9) || b === MINUS || b === DOT) {
      if (++numberLength > MAX_PLAIN_NUMBER) plainNumbers = false;
      continue;
    }
    // Outside a string, e/E/+ belong to a number's exponent (true, false and null hold e, but no digit precedes it there).
    if ((b === LOWER_E || b === UPPER_E || b === PLUS) && numberLength > 0) plainNumbers = false;
    numberLength = 0;
    if (b === QUOTE) inString = true;
    else if (b === COLON) members++;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) break;
      }
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  shape.depth = deepest;
  shape.members = members;
  shape.plainNumbers = plainNumbers;
  shape.ascii = stringBits < 0x80;
  return shape;
}
