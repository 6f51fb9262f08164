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
  return new Negotiator({ headers: header === undefined ? {} : { accept: header } }).mediaTypes([type]).length > 0;
}

/**
 * Whether the body is declared as JSON (`application/json`, any parameters).
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-8.3
 */
export function isJsonContentType(header: string | undefined): boolean {
  return header !== undefined && header.split(';')[0]!.trim().toLowerCase() === 'application/json';
}
