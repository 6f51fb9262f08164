/**
 * Ending a stdio session when the credentials its child started with expire (docs/downstream.md,
 * "Expiry during a long stdio session"): a child cannot take a new environment, so the session
 * ends and the MCP client re-initializes with a fresh exchange (MCP 2025-11-25 transports
 * §Session Management: a client that gets 404 for its session starts a new one).
 */
import type { Caller } from '../kernel/caller.ts';
import type { ServerConfig } from '../config/schema.ts';
import type { DownstreamCredentials } from './types.ts';

/** setTimeout's largest delay (2^31 - 1 ms). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Calls `end` when the credentials `envFor` just gave (caller, server) expire. Call right after
 * the child started; returns a function that cancels the timer (call it when the session ends).
 */
export function endAtCredentialExpiry(
  downstream: DownstreamCredentials,
  caller: Caller,
  server: ServerConfig,
  end: (reason: string) => void,
  now: () => number = Date.now,
): () => void {
  const expiresAt = downstream.credentialsExpireAt?.(caller, server);
  if (expiresAt === undefined) return () => {};
  const timer = setTimeout(() => end('downstream credential expired'), Math.min(MAX_DELAY_MS, Math.max(0, expiresAt * 1000 - now())));
  timer.unref();
  return () => clearTimeout(timer);
}
