/**
 * The last step of a GET (MCP 2025-11-25 transports §Listening for Messages from the Server,
 * §Resumability and Redelivery): with `Last-Event-ID`, the stream that event belongs to continues
 * (a POST's or the GET stream; 204 when nothing is left of an answered one); without, the
 * session's server stream opens (a newer GET replaces an older one).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseLastEventId } from '../event-id.ts';
import type { ProtocolVersion } from '../protocol-version.ts';
import type { Session } from '../session.ts';
import { startSseResponse } from '../sse.ts';
import type { Cors } from './edge.ts';

/** @throws GatewayError invalid_message (400) for an ID this session never issued, 410 when its events are gone */
export function listen(req: IncomingMessage, res: ServerResponse, session: Session, version: ProtocolVersion | undefined, cors: Cors): void {
  const position = parseLastEventId(req.headers['last-event-id']);
  if (position) {
    const stream = session.resumption(position);
    if (!stream) {
      res.writeHead(204, cors).end();
      return;
    }
    startSseResponse(res, cors);
    stream.attach(res, position.seq, false);
  } else {
    startSseResponse(res, cors);
    session.attachServerStream(res, version);
  }
  session.upstream?.openServerStream(version);
}
