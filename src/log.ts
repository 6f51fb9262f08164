/**
 * Structured logging (pino). Tokens, secrets, passwords and Authorization headers are redacted
 * by path here, once, so no call site can leak them by accident; still, never pass them in.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.client_secret',
  '*.password',
  '*.token',
  '*.secret',
  'access_token',
  'refresh_token',
  'client_secret',
  'password',
  'token',
  'secret',
];

export function createLogger(level: string = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'mcp-warden' } },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything: for tests and library use without logs. */
export const silentLogger: Logger = pino({ level: 'silent' });

// Runs that look like credentials: JWTs (three base64url parts) and long base64url/hex strings
// such as authorization codes, refresh tokens, client secrets and session IDs.
const CREDENTIAL_SHAPED = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|[A-Za-z0-9_+/=-]{20,}/g;

/**
 * An unexpected error as it may be logged: its name and its message with query strings and
 * credential-shaped runs masked, since a message can quote the request that caused it
 * (a URL with `?code=…`, a header value). Never the stack's arguments, never the request itself.
 */
export function describeError(err: unknown): { name: string; message: string } {
  const e = err instanceof Error ? err : new Error(String(err));
  const message = e.message.replace(/\?[^\s'"]*/g, '?[redacted]').replace(CREDENTIAL_SHAPED, '[redacted]');
  return { name: e.name, message };
}
