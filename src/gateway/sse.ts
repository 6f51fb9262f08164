/**
 * Server-sent events (HTML Living Standard §9.2) as Streamable HTTP uses them: the writer for
 * our streams and an incremental parser for an HTTP upstream's streams.
 */
import type { ServerResponse } from 'node:http';

/**
 * MCP 2025-11-25 transports: SSE responses; `X-Accel-Buffering: no` so reverse proxies pass each
 * event at once (transports draft, 2026-01-26), no caching of a per-caller stream.
 */
export function startSseResponse(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
    // No `Connection` of our own: keep-alive is HTTP/1.1's default, which Node states itself, and
    // a `Connection: close` set on a stopping instance's answer must stand (RFC 9112 §9.6).
    ...headers,
  });
  // Headers go out now, not with the first event, so the client sees the stream open.
  res.flushHeaders();
}

/**
 * One `message` event carrying one JSON-RPC message, with its ID when it has one. JSON text with
 * line breaks (pretty-printed upstream output) becomes several `data:` lines, which the client
 * joins back with LF: the same JSON value.
 */
export function formatSseEvent(id: string | undefined, json: string): string {
  const data = json.includes('\n') || json.includes('\r') ? json.replace(/\r\n|\r|\n/g, '\ndata: ') : json;
  return id ? `id: ${id}\nevent: message\ndata: ${data}\n\n` : `event: message\ndata: ${data}\n\n`;
}

/** Writes one `message` event; each event is its own write (no buffering). */
export function writeSseMessage(res: ServerResponse, json: string, id?: string): void {
  res.write(formatSseEvent(id, json));
}

/**
 * MCP 2025-11-25 transports §Sending Messages to the Server: the priming event, "an SSE event
 * consisting of an event ID and an empty data field", so the client can reconnect from it; with
 * `retry` (HTML §9.2.6) the client waits that long before it does.
 */
export function formatPrimingEvent(id: string, retryMs: number | undefined): string {
  return retryMs !== undefined && retryMs > 0 ? `id: ${id}\nretry: ${retryMs}\ndata: \n\n` : `id: ${id}\ndata: \n\n`;
}
