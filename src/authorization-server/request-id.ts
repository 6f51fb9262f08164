/**
 * A request id per authorization server request, so the log line of a failure and the page or
 * header the person sees name the same request. Kept beside the request (a WeakMap), never in it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const ids = new WeakMap<IncomingMessage, string>();

/** The request's id, assigned on first use. */
export function requestIdOf(req: IncomingMessage): string {
  let id = ids.get(req);
  if (id === undefined) ids.set(req, (id = randomUUID()));
  return id;
}

/** `to` stands for `from` from now on (a replayed request): same id. Returns `to`. */
export function adoptRequestId(from: IncomingMessage, to: IncomingMessage): IncomingMessage {
  ids.set(to, requestIdOf(from));
  return to;
}
