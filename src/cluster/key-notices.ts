/**
 * Key-rotation notices over Redis PUBLISH/SUBSCRIBE: when the embedded authorization server's
 * signing keys change (`mcp-warden keys rotate`, or an instance that picked a rotation up on
 * SIGHUP), every instance reloads its keys from the Store at once instead of at its next key
 * check (`signingKeyCheckSeconds`, default 60 s). So within about a second of a rotation every
 * instance signs with the new key and publishes it, and after `keys rotate --force` (a
 * compromised key) no instance's gateway accepts the retired key's tokens any more
 * (RFC 7517 §5: a key that left the set must not be used).
 *
 * The Store is the record, Redis only the nudge: a notice carries no key material, only the
 * `kid`s the publisher saw, and a receiver re-reads the keys table (keys-reload.ts). Whoever can
 * publish on the channel can at most make instances re-read their own database, and receivers
 * coalesce notices (one reload running, at most one queued), so a flood costs one read at a time.
 * A notice lost in an outage is made up by the periodic key check. Messages are parsed at the
 * edge; a malformed one is dropped with a warning.
 */
import { describeError, type Logger } from '../log.ts';
import { openRedisConnection, type RedisConnection } from './redis-connection.ts';
import { parseJsonObject } from '../kernel/json-object.ts';

/** The channel's name after the key prefix. */
export const KEY_NOTICE_CHANNEL = 'signing-keys';

/** Longest a publisher waits for PUBLISH (or, from the CLI, for the connection) to be answered. */
const PUBLISH_TIMEOUT_MS = 2000;
/** More kids than any real set (two published, a few awaiting retirement): not a notice. */
const MAX_KIDS = 16;
/** A JWK thumbprint (RFC 7638) is 43 characters. */
const MAX_KID_LENGTH = 128;

/** What a notice says: the active signing `kid`s, newest (signing) first, after the change. */
export interface KeyNotice {
  kids: string[];
}

/** A key notice from the channel, or undefined when the message is not one. */
export function parseKeyNotice(message: string): KeyNotice | undefined {
  const value = parseJsonObject(message);
  if (!value) return undefined;
  const { kids } = value;
  if (!Array.isArray(kids) || kids.length === 0 || kids.length > MAX_KIDS) return undefined;
  if (!kids.every((k) => typeof k === 'string' && k !== '' && k.length <= MAX_KID_LENGTH)) return undefined;
  return { kids: kids as string[] };
}

export interface KeyNotices {
  /** Tells every other instance to reload; never fails (the key check makes up a lost notice). */
  publish(notice: KeyNotice): Promise<void>;
  /** Hears notices from the channel (this instance's own included). */
  subscribe(listener: (notice: KeyNotice) => void): () => void;
  /** Settles once the subscription is in place (or failed, logged). */
  ready: Promise<void>;
}

/** @see https://www.rfc-editor.org/rfc/rfc7517#section-5 */
export function createRedisKeyNotices(connection: RedisConnection, logger: Logger): KeyNotices {
  const channel = connection.key(KEY_NOTICE_CHANNEL);
  const listeners = new Set<(notice: KeyNotice) => void>();
  const log = logger.child({ component: 'redis-key-notices' });
  // Queued on the subscriber until its first connection, sent again until Redis confirms it; node-redis subscribes again after each reconnect.
  const ready = connection.subscribe(channel, (message) => {
    const notice = parseKeyNotice(message);
    if (!notice) return void log.warn({ event: 'key_notice_refused', channel }, 'a message on the signing-keys channel is not a key notice; ignored');
    for (const listener of listeners) listener(notice);
  }, (err) => {
    log.warn({ event: 'key_notice_subscribe_failed', reason: describeError(err).message }, 'subscribing to key notices failed; trying again, and until then rotations reach this instance at its next key check');
  });
  return {
    ready,
    async publish(notice) {
      if (!connection.client.isReady) {
        log.debug({ event: 'key_notice_not_published', reason: 'not connected' }, 'key notice not published; other instances reload at their next key check');
        return;
      }
      await publishWithin(connection, channel, notice).catch((err: unknown) => {
        log.debug({ event: 'key_notice_not_published', reason: describeError(err).message }, 'key notice not published; other instances reload at their next key check');
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** PUBLISH within PUBLISH_TIMEOUT_MS; the number of subscribed connections that received it. */
function publishWithin(connection: RedisConnection, channel: string, notice: KeyNotice): Promise<number> {
  return connection.command(() => connection.client.publish(channel, JSON.stringify({ kids: notice.kids })), PUBLISH_TIMEOUT_MS);
}

/**
 * For a process that is not an instance (`mcp-warden keys rotate`): connects, publishes one
 * notice and disconnects. Resolves with how many instances heard it, or with the reason it was
 * not sent (the instances then pick the rotation up at their next key check). Never throws.
 */
export async function announceKeyChange(redis: { url: string; keyPrefix: string }, notice: KeyNotice, logger: Logger): Promise<{ received: number } | { notSent: string }> {
  const connection = openRedisConnection({ url: redis.url, keyPrefix: redis.keyPrefix, logger, maxBackoffMs: 500 });
  try {
    const deadline = Date.now() + PUBLISH_TIMEOUT_MS;
    while (!connection.client.isReady) {
      if (Date.now() > deadline) return { notSent: `Redis did not answer within ${PUBLISH_TIMEOUT_MS} ms` };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Each instance has one subscriber connection on the channel.
    return { received: await publishWithin(connection, connection.key(KEY_NOTICE_CHANNEL), notice) };
  } catch (err) {
    return { notSent: describeError(err).message };
  } finally {
    await connection.close();
  }
}

/**
 * Runs `reload` for notices: one at a time, and notices that arrive meanwhile are served by one
 * more run, not one each (a flood costs one keys-table read at a time).
 */
export function coalesceReloads(reload: () => Promise<unknown>, onError: (err: unknown) => void): () => void {
  let running = false;
  let again = false;
  const run = () => {
    running = true;
    again = false;
    reload().catch(onError).finally(() => {
      running = false;
      if (again) run();
    });
  };
  return () => {
    if (running) again = true;
    else run();
  };
}
