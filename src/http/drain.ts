/**
 * Draining at shutdown. MCP 2025-11-25 lifecycle §Shutdown: over HTTP, a server shuts down by
 * closing its connections; the gateway then ends every session, and a request still waiting for
 * its upstream's answer gets an error. Such a request may nonetheless take effect upstream (a
 * tools/call that sends a message, writes a record), and its client, which saw only an error, may
 * send it again. So before the sessions end, requests already sent upstream get a while to be
 * answered, as a rolling restart's instance would be given by any proxy that drains.
 */

export interface DrainOutcome {
  /** How long the drain waited, ms. */
  waitedMs: number;
  /** Requests still unanswered when it stopped waiting (0: all were answered). */
  left: number;
}

/**
 * Waits until `pending()` is 0 or `limitMs` has passed, looking every `intervalMs`. Shutdown is
 * not a hot path: a look every 50 ms costs nothing, where a hook on every request would.
 */
export async function drain(pending: () => number, limitMs: number, intervalMs = 50): Promise<DrainOutcome> {
  const started = Date.now();
  for (let elapsed = 0; pending() > 0 && elapsed < limitMs; elapsed = Date.now() - started) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, limitMs - elapsed)));
  }
  return { waitedMs: Date.now() - started, left: pending() };
}
