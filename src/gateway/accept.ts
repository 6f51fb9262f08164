/** `Accept` and `Content-Type` checks of the Streamable HTTP front (MCP transports T-7, T-12). */

function mediaRanges(header: string | undefined): string[] {
  if (!header) return [];
  return header.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
}

/** Whether `Accept` allows `type` (exact, `type/*` or `*\/*`); a missing header accepts anything (RFC 9110 §12.5.1). */
export function accepts(header: string | undefined, type: string): boolean {
  if (header === undefined) return true;
  // Fast path for what every MCP client sends.
  if (header.includes(type)) return true;
  const ranges = mediaRanges(header);
  const major = type.split('/')[0];
  return ranges.some((r) => r === type || r === '*/*' || r === `${major}/*`);
}

/** Whether the body is declared as JSON (`application/json`, any parameters). */
export function isJsonContentType(header: string | undefined): boolean {
  return header !== undefined && header.split(';')[0]!.trim().toLowerCase() === 'application/json';
}
