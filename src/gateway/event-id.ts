/**
 * SSE event IDs of the gateway's streams: `<session>-<stream>-<seq>`, all decimal, prefixed with
 * `<instance>.` when instances share sessions (`cluster.redis`): the instance that holds the
 * replay buffer, so a resumption that lands elsewhere is sent there (src/gateway/steps/
 * find-session.ts). IDs are opaque to clients (HTML §9.2.6), so the prefix changes nothing for them.
 *
 * MCP 2025-11-25 transports §Resumability and Redelivery: IDs MUST be globally unique across all
 * streams of the session (`seq` counts every event of the session) and SHOULD encode the
 * originating stream (`stream`: 0 is the GET stream, n ≥ 1 a POST response stream). `session` is a
 * per-process session number, so an ID issued to one session never names an event of another.
 * Unguessable is not needed: a session is bound to its caller (MCP security best practices §Session Hijacking) before any ID is read.
 */
import { GatewayError } from './errors.ts';

export interface EventPosition {
  /** The instance that issued the ID (cluster only). */
  instance?: string | undefined;
  session: number;
  stream: number;
  seq: number;
}

export function formatEventId(session: number, stream: number, seq: number, instance?: string): string {
  return instance === undefined ? `${session}-${stream}-${seq}` : `${instance}.${session}-${stream}-${seq}`;
}

const INSTANCE = /^[0-9a-z]{1,16}$/;

const MAX_ID_LENGTH = 64;

function parsePart(part: string | undefined): number | undefined {
  if (part === undefined || part.length === 0 || part.length > 15) return undefined;
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  // No leading zeros: one spelling per ID.
  if (part.length > 1 && part[0] === '0') return undefined;
  return Number(part);
}

/**
 * Reads a `Last-Event-ID` request header (HTML §9.2.4) into the position it names.
 * @throws GatewayError invalid_message (400) for anything that is not an ID of ours
 * @see MCP 2025-11-25 basic/transports §Resumability and Redelivery
 */
export function parseLastEventId(value: string | string[] | undefined): EventPosition | undefined {
  if (value === undefined) return undefined;
  let text = Array.isArray(value) ? undefined : value;
  let instance: string | undefined;
  const dot = text?.indexOf('.') ?? -1;
  if (text !== undefined && dot !== -1) {
    instance = text.slice(0, dot);
    text = INSTANCE.test(instance) ? text.slice(dot + 1) : undefined;
  }
  const parts = text !== undefined && text.length <= MAX_ID_LENGTH ? text.split('-') : [];
  const [session, stream, seq] = [parsePart(parts[0]), parsePart(parts[1]), parsePart(parts[2])];
  if (parts.length !== 3 || session === undefined || stream === undefined || seq === undefined) {
    throw new GatewayError('invalid_message', 'Bad Request: Last-Event-ID is not an event ID of this server');
  }
  return instance === undefined ? { session, stream, seq } : { instance, session, stream, seq };
}
