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
