/**
 * The revocation fan-out over Redis PUBLISH/SUBSCRIBE: a revocation on one instance reaches
 * every other instance's revocation list (src/authorization-server/revocation.ts), which the
 * gateway asks at every use of an access token, verified-token cache hits included (RFC 7009
 * §2.1: the token is invalid from the revocation on, everywhere).
 *
 * Redis is the fast path, not the record: the revocation is written to the Store before it is
 * published, and every instance's list reads what changed in the Store every 500 ms, and all of
 * it again each time the subscriber is ready after a (re)connect (`onReconnect`). So a message
 * lost in an outage (PUBLISH is fire-and-forget; a subscriber that is reconnecting misses it)
 * still takes effect through the Store within the 1 s bound. Publishing therefore never waits
 * for Redis and never fails the revocation.
 *
 * Messages are parsed at the edge: whoever can publish on the channel can only revoke, never
 * un-revoke or grant, and a malformed message is dropped with a warning.
 */
import type { RevocationBus, RevocationEvent, RevocationKind } from '../authorization-server/revocation.ts';
import { describeError, type Logger } from '../log.ts';
import type { RedisConnection } from './redis-connection.ts';
import { parseJsonObject } from '../kernel/json-object.ts';

/** The channel's name after the key prefix. */
export const REVOCATION_CHANNEL = 'revocations';

const KINDS: ReadonlySet<string> = new Set<RevocationKind>(['grant', 'token', 'subject', 'client']);

/** Longest a revocation waits for PUBLISH to be answered. */
const PUBLISH_TIMEOUT_MS = 1000;

/** Longest id accepted from the channel (grant ids, jtis, account and client ids are far shorter). */
const MAX_ID_LENGTH = 2048;

/** A revocation event from the channel, or undefined when the message is not one. */
export function parseRevocationMessage(message: string): RevocationEvent | undefined {
  const value = parseJsonObject(message);
  if (!value) return undefined;
  const { kind, id, at, until } = value;
  if (typeof kind !== 'string' || !KINDS.has(kind)) return undefined;
  if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH) return undefined;
  if (typeof at !== 'number' || !Number.isFinite(at) || typeof until !== 'number' || !Number.isFinite(until)) return undefined;
  return { kind: kind as RevocationKind, id, at, until };
}

/**
 * A RevocationBus over one Redis connection: `publish` delivers to this instance's listeners at
 * once and to the others through the prefixed channel; `subscribe` hears both.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 */
export function createRedisRevocationBus(connection: RedisConnection, logger: Logger): RevocationBus & { ready: Promise<void> } {
  const channel = connection.key(REVOCATION_CHANNEL);
  const listeners = new Set<(event: RevocationEvent) => void>();
  const reconnectListeners = new Set<() => void>();
  // node-redis emits 'ready' at every (re)connect, after which it subscribes again: whatever was
  // published in between was missed, so the lists read the Store in full.
  connection.subscriber.on('ready', () => { for (const listener of reconnectListeners) listener(); });
  const log = logger.child({ component: 'redis-revocation-bus' });
  const deliver = (event: RevocationEvent) => {
    for (const listener of listeners) listener(event);
  };
  // Queued on the subscriber until its first connection, sent again until Redis confirms it; node-redis subscribes again after each reconnect.
  const ready = connection.subscribe(channel, (message) => {
    const event = parseRevocationMessage(message);
    if (event) deliver(event);
    else log.warn({ event: 'revocation_message_refused', channel }, 'a message on the revocation channel is not a revocation; ignored');
  }, (err) => {
    log.warn({ event: 'revocation_subscribe_failed', reason: describeError(err).message }, 'subscribing to the revocation channel failed; trying again, and until then revocations from other instances arrive through the database only');
  });
  return {
    ready,
    async publish(event) {
      deliver(event);
      // Disconnected: the Store already has it, and the others look it up there (module comment).
      if (!connection.client.isReady) return;
      try {
        // A connection that looks up but no longer answers (a half-open socket) holds nobody up.
        await connection.command(() => connection.client.publish(channel, JSON.stringify(event)), PUBLISH_TIMEOUT_MS);
      } catch (err) {
        log.debug({ event: 'revocation_publish_failed', reason: describeError(err).message }, 'revocation not published; other instances find it in the database');
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
  };
}
