/**
 * `Accept` and `Content-Type` of the Streamable HTTP front (MCP 2025-11-25 transports §Sending
 * Messages to the Server, §Listening for Messages from the Server). `Accept` is negotiated by
 * `negotiator` (RFC 9110 §12.5.1): media ranges, wildcards, parameters and quality values,
 * where `q=0` means "not acceptable".
 */
import Negotiator from 'negotiator';

/**
 * Whether `Accept` allows `type` with a non-zero quality; a missing header accepts anything.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-12.5.1
 */
export function accepts(header: string | undefined, type: string): boolean {
  if (header === undefined) return true;
  // What the MCP SDKs send on every POST (transports §Sending Messages: "MUST include an Accept
  // header, listing both"), and on every GET: answered without building a key or a negotiator.
  if (header === SDK_POST_ACCEPT || header === SDK_POST_ACCEPT_REVERSED) return type === 'application/json' || type === 'text/event-stream';
  if (header === 'text/event-stream') return type === 'text/event-stream';
  // Clients send the same few Accept values on every request: remember the answers for short
  // ones (parsing costs ~1.5 µs a POST; a bounded map, cleared when full, costs nothing).
  const key = header.length <= MAX_CACHED_HEADER ? `${type}\n${header}` : undefined;
  const known = key === undefined ? undefined : answers.get(key);
  if (known !== undefined) return known;
  const ok = new Negotiator({ headers: { accept: header } }).mediaTypes([type]).length > 0;
  if (key !== undefined) {
    if (answers.size >= MAX_CACHED_ANSWERS) answers.clear();
    answers.set(key, ok);
  }
  return ok;
}

const SDK_POST_ACCEPT = 'application/json, text/event-stream';
const SDK_POST_ACCEPT_REVERSED = 'text/event-stream, application/json';
const MAX_CACHED_HEADER = 256;
const MAX_CACHED_ANSWERS = 64;
const answers = new Map<string, boolean>();

/**
 * Whether the body is declared as JSON (`application/json`, any parameters).
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-8.3
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === 'application/json') return true;
  if (header === undefined) return false;
  const semicolon = header.indexOf(';');
  return (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}
