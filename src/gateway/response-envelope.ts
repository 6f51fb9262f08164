/**
 * An upstream's JSON answer read by its envelope (JSON-RPC 2.0 §5: `jsonrpc`, `id`, and exactly one
 * of `result` and `error`) without building its value. The gateway forwards an answer as the text
 * it arrived as (jsonrpc.ts `rememberRaw`) and routes it by its id; the result itself is read only
 * when the policy filters a list, or when it answers `initialize`. `JSON.parse` of even a short
 * answer costs the gateway ~3.5 µs per request in place (docs/benchmarks.md, "The upstream's
 * answer read by its envelope"): it internalizes every member name and looks up a hidden class for every
 * object, in tables that are cold between requests. A scan of the text costs a fraction of that.
 *
 * The scan is a strict subset of `JSON.parse`: it accepts only a text that is valid JSON (RFC 8259
 * §2–§7, checked in full, nested values included) whose top-level object has exactly the members
 * `jsonrpc` ("2.0"), `id` (a short integer, or a string without escapes) and one of `result` and
 * `error`, each once and spelled without escapes. Anything else (a repeated member, an unknown
 * member, a long or fractional id, nesting deeper than MAX_DEPTH, invalid JSON) is left to
 * `JSON.parse` and the lenient check of jsonrpc.ts, which decide it exactly as before.
 * @see https://www.rfc-editor.org/rfc/rfc8259
 * @see https://www.jsonrpc.org/specification#response_object
 */
import { rememberRaw, type JsonRpcId, type JsonRpcResponse } from './jsonrpc.ts';

/** What the scan learned: the id, and whether the answer is an error. */
export interface ResponseEnvelope {
  id: JsonRpcId;
  isError: boolean;
}

/** Deepest nesting the scan follows; a deeper value goes to `JSON.parse` (its depth is still bounded by the upstream's own sizes). */
const MAX_DEPTH = 64;
/** Longest integer id taken from the text: 15 digits always round-trip through a double, as `JSON.parse` reads them. */
const MAX_ID_DIGITS = 15;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const DIGIT_0 = 0x30;
const DIGIT_1 = 0x31;
const DIGIT_9 = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const OPEN_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_BRACKET = 0x5d;
const LOWER_B = 0x62;
const LOWER_E = 0x65;
const LOWER_F = 0x66;
const LOWER_N = 0x6e;
const LOWER_R = 0x72;
const LOWER_T = 0x74;
const LOWER_U = 0x75;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

const IN_OBJECT = 1;
const IN_ARRAY = 2;
/** The open containers of the value being skipped (one scan at a time: the gateway's main thread). */
const containers = new Uint8Array(MAX_DEPTH);

/** RFC 8259 §2: insignificant whitespace is space, horizontal tab, line feed and carriage return. */
function skipWhitespace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
    i++;
  }
}

function isHex(c: number): boolean {
  return (c >= DIGIT_0 && c <= DIGIT_9) || ((c | 0x20) >= 0x61 && (c | 0x20) <= LOWER_F);
}

/**
 * RFC 8259 §7: the string opening at `i` (a quote); the index after its closing quote, or -1.
 * Unescaped code units from U+0020 up are taken as they are (as `JSON.parse` takes them, lone
 * surrogates included); a control character or an unknown escape is not JSON.
 */
function skipString(s: string, i: number): number {
  for (i++; ; ) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    // NaN past the end compares false with everything: the end of the text is no string's end.
    if (!(c >= SPACE)) return -1;
    if (c !== BACKSLASH) {
      i++;
      continue;
    }
    const e = s.charCodeAt(i + 1);
    if (e === QUOTE || e === BACKSLASH || e === SLASH || e === LOWER_B || e === LOWER_F || e === LOWER_N || e === LOWER_R || e === LOWER_T) i += 2;
    else if (e === LOWER_U && isHex(s.charCodeAt(i + 2)) && isHex(s.charCodeAt(i + 3)) && isHex(s.charCodeAt(i + 4)) && isHex(s.charCodeAt(i + 5))) i += 6;
    else return -1;
  }
}

function skipDigits(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (!(c >= DIGIT_0 && c <= DIGIT_9)) return i;
    i++;
  }
}

/** RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` at `i`; the index after it, or -1. */
function skipNumber(s: string, i: number): number {
  if (s.charCodeAt(i) === MINUS) i++;
  const first = s.charCodeAt(i);
  if (first === DIGIT_0) i++;
  else if (first >= DIGIT_1 && first <= DIGIT_9) i = skipDigits(s, i + 1);
  else return -1;
  if (s.charCodeAt(i) === DOT) {
    const start = i + 1;
    i = skipDigits(s, start);
    if (i === start) return -1;
  }
  const e = s.charCodeAt(i);
  if (e === LOWER_E || e === UPPER_E) {
    i++;
    const sign = s.charCodeAt(i);
    if (sign === PLUS || sign === MINUS) i++;
    const start = i;
    i = skipDigits(s, start);
    if (i === start) return -1;
  }
  return i;
}

/**
 * The JSON value starting at `i` (whitespace skipped before it), walked without recursion; the
 * index after it, or -1 when it is not valid JSON or nests deeper than MAX_DEPTH.
 */
function skipValue(s: string, i: number): number {
  let depth = 0;
  for (;;) {
    // A value is expected at i.
    i = skipWhitespace(s, i);
    const c = s.charCodeAt(i);
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === MAX_DEPTH) return -1;
      i = skipWhitespace(s, i + 1);
      const close = s.charCodeAt(i);
      if (close === (c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET)) {
        i++;
      } else {
        containers[depth++] = c === OPEN_BRACE ? IN_OBJECT : IN_ARRAY;
        if (c === OPEN_BRACE && (i = skipMemberName(s, i)) === -1) return -1;
        continue;
      }
    } else if (c === QUOTE) {
      if ((i = skipString(s, i)) === -1) return -1;
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      if ((i = skipNumber(s, i)) === -1) return -1;
    } else if (c === LOWER_T && s.startsWith('true', i)) i += 4;
    else if (c === LOWER_F && s.startsWith('false', i)) i += 5;
    else if (c === LOWER_N && s.startsWith('null', i)) i += 4;
    else return -1;
    // After a value: close containers until one goes on with a comma.
    for (;;) {
      if (depth === 0) return i;
      i = skipWhitespace(s, i);
      const d = s.charCodeAt(i);
      const inside = containers[depth - 1];
      if (d === COMMA) {
        i++;
        if (inside === IN_OBJECT && (i = skipMemberName(s, skipWhitespace(s, i))) === -1) return -1;
        break;
      }
      if ((d === CLOSE_BRACE && inside === IN_OBJECT) || (d === CLOSE_BRACKET && inside === IN_ARRAY)) {
        depth--;
        i++;
        continue;
      }
      return -1;
    }
  }
}

/** A member name and its colon at `i` (RFC 8259 §4); the index after the colon, or -1. */
function skipMemberName(s: string, i: number): number {
  if (s.charCodeAt(i) !== QUOTE || (i = skipString(s, i)) === -1) return -1;
  i = skipWhitespace(s, i);
  return s.charCodeAt(i) === COLON ? i + 1 : -1;
}

/** The id `readId` read last (a module variable: the scan allocates nothing but the id itself). */
let idRead: JsonRpcId = 0;

/** A top-level id: a short integer or a string without escapes, left in `idRead`; the index after it, or -1. */
function readId(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) {
    const end = s.indexOf('"', i + 1);
    if (end === -1) return -1;
    for (let k = i + 1; k < end; k++) {
      const u = s.charCodeAt(k);
      if (u < SPACE || u === BACKSLASH) return -1;
    }
    idRead = s.slice(i + 1, end);
    return end + 1;
  }
  const negative = c === MINUS;
  let k = negative ? i + 1 : i;
  const first = s.charCodeAt(k);
  if (!(first >= DIGIT_0 && first <= DIGIT_9)) return -1;
  const end = skipDigits(s, k);
  if (end - k > MAX_ID_DIGITS || (first === DIGIT_0 && end - k > 1)) return -1;
  const next = s.charCodeAt(end);
  if (next === DOT || next === LOWER_E || next === UPPER_E) return -1;
  let n = 0;
  for (; k < end; k++) n = n * 10 + (s.charCodeAt(k) - DIGIT_0);
  idRead = negative ? -n : n;
  return end;
}

const JSONRPC = 1;
const ID = 2;
const RESULT = 4;
const ERROR = 8;

/** Which top-level member the name opening at `i` is (0: another, or one spelled with escapes). */
function memberAt(s: string, i: number): number {
  if (s.startsWith('"id"', i)) return ID;
  if (s.startsWith('"result"', i)) return RESULT;
  if (s.startsWith('"jsonrpc"', i)) return JSONRPC;
  if (s.startsWith('"error"', i)) return ERROR;
  return 0;
}

const MEMBER_LENGTH: Record<number, number> = { [JSONRPC]: 9, [ID]: 4, [RESULT]: 8, [ERROR]: 7 };

/**
 * The envelope of a JSON-RPC response text, or undefined when the scan cannot vouch for it (the
 * text then goes to `JSON.parse`, which reads it or refuses it as before).
 */
export function scanResponse(s: string): ResponseEnvelope | undefined {
  let i = skipWhitespace(s, 0);
  if (s.charCodeAt(i) !== OPEN_BRACE) return undefined;
  let seen = 0;
  let id: JsonRpcId = 0;
  i = skipWhitespace(s, i + 1);
  for (;;) {
    const member = memberAt(s, i);
    // Unknown, escaped or repeated: JSON.parse keeps the last of repeated members; leave it to it.
    if (member === 0 || (seen & member) !== 0) return undefined;
    seen |= member;
    i = skipWhitespace(s, i + MEMBER_LENGTH[member]!);
    if (s.charCodeAt(i) !== COLON) return undefined;
    i = skipWhitespace(s, i + 1);
    if (member === JSONRPC) i = s.startsWith('"2.0"', i) ? i + 5 : -1;
    else if (member === ID) {
      i = readId(s, i);
      id = idRead;
    }
    else i = skipValue(s, i);
    if (i === -1) return undefined;
    i = skipWhitespace(s, i);
    const c = s.charCodeAt(i);
    if (c === CLOSE_BRACE) break;
    if (c !== COMMA) return undefined;
    i = skipWhitespace(s, i + 1);
  }
  // Nothing but whitespace after the object (RFC 8259 §2: one value), and a complete envelope.
  if (skipWhitespace(s, i + 1) !== s.length) return undefined;
  if ((seen & (JSONRPC | ID)) !== (JSONRPC | ID) || (seen & (RESULT | ERROR)) === (RESULT | ERROR) || (seen & (RESULT | ERROR)) === 0) return undefined;
  return { id, isError: (seen & ERROR) !== 0 };
}

/**
 * A response known by its envelope. Its text is what the client gets (`serialize`); its `result`
 * or `error` is parsed from that text the first time something reads it (a list filter, the
 * `initialize` answer), and `JSON.stringify` sees the whole message (`toJSON`).
 */
export class ScannedResponse implements JsonRpcResponse {
  readonly jsonrpc = '2.0' as const;
  readonly id: JsonRpcId;
  readonly #text: string;
  readonly #isError: boolean;
  #member: unknown;
  #parsed = false;

  constructor(envelope: ResponseEnvelope, text: string) {
    this.id = envelope.id;
    this.#text = text;
    this.#isError = envelope.isError;
    rememberRaw(this, text);
  }

  get result(): unknown {
    return this.#isError ? undefined : this.#read();
  }

  get error(): JsonRpcResponse['error'] {
    return this.#isError ? (this.#read() as JsonRpcResponse['error']) : undefined;
  }

  toJSON(): JsonRpcResponse {
    return this.#isError ? { jsonrpc: '2.0', id: this.id, error: this.error } : { jsonrpc: '2.0', id: this.id, result: this.result };
  }

  #read(): unknown {
    if (!this.#parsed) {
      const value = JSON.parse(this.#text) as { result?: unknown; error?: unknown };
      this.#member = this.#isError ? value.error : value.result;
      this.#parsed = true;
    }
    return this.#member;
  }
}
