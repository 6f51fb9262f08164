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
    Connection: 'keep-alive',
    ...headers,
  });
  // Headers go out now, not with the first event, so the client sees the stream open.
  res.flushHeaders();
}

/**
 * One `message` event carrying one JSON-RPC message; each event is its own write (no buffering).
 * JSON text with line breaks (pretty-printed upstream output) becomes several `data:` lines, which
 * the client joins back with LF: the same JSON value.
 */
export function writeSseMessage(res: ServerResponse, json: string, id?: string): void {
  const data = json.includes('\n') || json.includes('\r') ? json.replace(/\r\n|\r|\n/g, '\ndata: ') : json;
  res.write(id ? `id: ${id}\nevent: message\ndata: ${data}\n\n` : `event: message\ndata: ${data}\n\n`);
}

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * An incremental SSE parser: feed it chunks, it calls `onEvent` per complete event.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
export function createSseParser(onEvent: (event: SseEvent) => void): (chunk: string) => void {
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  const dispatch = () => {
    if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id });
    data = [];
    event = '';
  };
  return (chunk) => {
    buffer += chunk;
    let start = 0;
    for (;;) {
      const nl = buffer.indexOf('\n', start);
      if (nl === -1) break;
      let line = buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        dispatch();
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
    buffer = buffer.slice(start);
  };
}
