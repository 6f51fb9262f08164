/**
 * `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3), rendered in one place.
 * Every auth-param value is written as a quoted-string (RFC 9110 §5.6.4): `"` and `\` are
 * escaped, and characters a header cannot carry are dropped rather than passed through.
 */

export interface BearerChallenge {
  /** RFC 6750 §3.1 error code; absent when the request carried no token (RFC 6750 §3). */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope';
  errorDescription?: string;
  /** RFC 6750 §3: space-delimited scopes needed. */
  scope?: string;
  /** RFC 9728 §5.1: where the protected resource metadata lives. */
  resourceMetadata: string;
}

/**
 * Escapes a value as an RFC 9110 §5.6.4 quoted-string.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.6.4
 */
export function quotedString(value: string): string {
  // qdtext allows HTAB, SP, VCHAR and obs-text; anything else (CR, LF, other controls) is dropped
  // so a value can never split or end the header.
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c === 0x09 || (c >= 0x20 && c !== 0x7f && c <= 0xff)) out += ch;
  }
  return `${out}"`;
}

/**
 * Renders a Bearer challenge.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-5.1
 */
export function renderBearerChallenge(challenge: BearerChallenge): string {
  const params: string[] = [];
  if (challenge.error) params.push(`error=${quotedString(challenge.error)}`);
  if (challenge.errorDescription) params.push(`error_description=${quotedString(challenge.errorDescription)}`);
  if (challenge.scope) params.push(`scope=${quotedString(challenge.scope)}`);
  params.push(`resource_metadata=${quotedString(challenge.resourceMetadata)}`);
  return `Bearer ${params.join(', ')}`;
}
