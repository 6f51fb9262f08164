/**
 * The MCP session directory in Redis (docs/deployment.md "Scale-out: MCP sessions"): which
 * instance opened each session, whom it is bound to, and, for an HTTP upstream, the upstream's own
 * session, so a request that the load balancer sends to another instance finds its session there
 * (MCP 2025-11-25 transports §Session Management: the session ID names the session to every
 * request, whichever process receives it).
 *
 * Keys and channel, after the deployment's prefix:
 *  - `session:<id>`: JSON DirectoryEntry with `mac`, an HMAC-SHA256 over the session ID and
 *    every member (owner, kind, binding, upstream session, protocol version, last refresh) under
 *    a key derived from `cluster.secret` (HKDF, its own info string), expiring `ttlMs` after the last refresh. Written when a
 *    session opens; refreshed lazily by whichever instance serves it (at most every ttl/4, never
 *    per request); deleted when the session ends for good.
 *  - `instance:<id>`: JSON `{url, mac}`, this instance's URL and an HMAC-SHA256 over `<id>\n<url>`
 *    under a key derived from `cluster.secret` (HKDF, RFC 5869, its own info string), expiring
 *    HEARTBEAT_TTL_MS after the last heartbeat: an instance whose key is gone is dead (killed,
 *    partitioned) or shut down, and one whose MAC does not verify is unknown.
 *  - channel `sessions-ended`: the ID of each session that ended for good, so instances drop the
 *    copies they adopted (session-routing.ts) at once instead of at their idle timeout.
 *
 * Nothing here is on the path of a request for a session the instance holds: the gateway asks the
 * directory only for a session it does not know. Every command waits at most TIMEOUT_MS, and not
 * at all while Redis has left an earlier one unanswered (redis-connection.ts `command`); writes
 * never fail a request (a lost write is repaired by the next refresh, and after an outage every
 * local session is written again), lookups throw DirectoryUnavailable so the caller can answer 503.
 *
 * Redis is NOT trusted with where a client's request goes: a hop carries the client's bearer and
 * body, so the URL it goes to must come from an instance, not from whoever can write the prefix's
 * keys (docs/deployment.md "What needs Redis": an ACL user limited to the prefix). Such a writer
 * can delete entries and end sessions, nothing more: an instance URL whose MAC does not verify is
 * treated as a dead owner (no hop); a session entry whose MAC does not verify is no session (so
 * no writer can bind another caller's upstream session to itself, MCP security best practices
 * §Session Hijacking); and every entry is parsed at the edge (malformed: absent).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { describeError, type Logger } from '../log.ts';
import type { RedisConnection } from './redis-connection.ts';
import { parseJsonObject } from '../kernel/json-object.ts';
import { parseInstanceUrl } from './instance-url.ts';

/** Longest a directory command waits for Redis. */
const TIMEOUT_MS = 250;
/** How often an instance says it is alive, and how long that lasts. */
export const HEARTBEAT_MS = 2_000;
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_MS;
/** The ended-session channel's name after the key prefix. */
export const SESSIONS_ENDED_CHANNEL = 'sessions-ended';

/** Session IDs the gateway issues (session.ts newSessionId): anything else is not ours and never becomes a key. */
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Instance IDs (newInstanceId): they also appear in SSE event IDs (src/gateway/event-id.ts). */
export const INSTANCE_ID = /^[0-9a-z]{1,16}$/;

export type UpstreamKind = 'stdio' | 'http';

export interface DirectoryEntry {
  /** The instance that opened the session, and where the others reach it. */
  instance: string;
  url: string;
  binding: { subject: string; clientId: string; audience: string; serverPath: string };
  kind: UpstreamKind;
  /** HTTP upstream: the upstream's own `Mcp-Session-Id`, once it gave one. */
  upstreamSessionId?: string | undefined;
  protocolVersion?: string | undefined;
  /** Last refresh, ms since the epoch, and the instance that made it (idle decisions across instances). */
  touchedAt: number;
  touchedBy: string;
}

/** Redis did not answer a lookup (down, slower than TIMEOUT_MS, or silent since an earlier command was given up). */
export class DirectoryUnavailable extends Error {
  override name = 'DirectoryUnavailable';
}

export interface SessionDirectory {
  readonly instanceId: string;
  readonly instanceUrl: string;
  /** Writes (or rewrites) a session's entry; never throws. */
  register(id: string, entry: Omit<DirectoryEntry, 'instance' | 'url' | 'touchedAt'> & { instance?: string; url?: string }, ttlMs: number): Promise<void>;
  /** The entry of session `id`, undefined when there is none. @throws DirectoryUnavailable */
  lookup(id: string): Promise<DirectoryEntry | undefined>;
  /** Deletes a session's entry and tells every instance it ended; never throws. */
  remove(id: string): Promise<void>;
  /** The URL of a live instance, undefined when it is gone. @throws DirectoryUnavailable */
  instanceUrlOf(instance: string): Promise<string | undefined>;
  /** Hears the IDs of sessions another instance ended for good. */
  onEnded(listener: (id: string) => void): () => void;
  /** Hears Redis becoming reachable again (to write the entries an outage lost). */
  onRecovered(listener: () => void): () => void;
  /** Stops the heartbeat and deletes this instance's key (the others stop forwarding to it at once). */
  close(): Promise<void>;
}

/** A random instance ID: lower-case letters and digits, fit for keys and event IDs. */
export function newInstanceId(): string {
  return BigInt(`0x${randomBytes(8).toString('hex')}`).toString(36).padStart(13, '0');
}

/** Whether `id` could be a session ID this gateway issued (checked before it names a key). */
export function isSessionId(id: string): boolean {
  return SESSION_ID.test(id);
}

/** HKDF-SHA256 (RFC 5869) of `cluster.secret` for one use: a key for one purpose only. */
export function derivedKey(secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'mcp-warden cluster', info, 32));
}

/** HMAC-SHA256 of `parts` (newline-joined) under `key`, base64url. */
function macOf(key: Buffer, parts: readonly string[]): string {
  return createHmac('sha256', key).update(parts.join('\n')).digest('base64url');
}

/** Whether `given` is the MAC `expected` (constant time: the MAC is a secret-derived value). */
function sameMac(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 2048;

/** A directory entry read from Redis, or undefined when the text is not one. */
export function parseDirectoryEntry(text: string | null | undefined): DirectoryEntry | undefined {
  const e = text ? parseJsonObject(text) : undefined;
  return e && directoryEntryOf(e);
}

/** The entry an already parsed JSON object holds, checked member by member (see parseDirectoryEntry). */
function directoryEntryOf(e: Record<string, unknown>): DirectoryEntry | undefined {
  const b = e.binding as Record<string, unknown> | null | undefined;
  if (!str(e.instance) || !INSTANCE_ID.test(e.instance) || !str(e.url) || !/^https?:\/\/[^/?#]+$/.test(e.url)) return undefined;
  if (typeof b !== 'object' || b === null || !str(b.subject) || !str(b.clientId) || !str(b.audience) || !str(b.serverPath)) return undefined;
  if (e.kind !== 'stdio' && e.kind !== 'http') return undefined;
  if (e.upstreamSessionId !== undefined && !str(e.upstreamSessionId)) return undefined;
  if (e.protocolVersion !== undefined && !str(e.protocolVersion)) return undefined;
  if (typeof e.touchedAt !== 'number' || !Number.isFinite(e.touchedAt) || !str(e.touchedBy) || !INSTANCE_ID.test(e.touchedBy)) return undefined;
  return {
    instance: e.instance,
    url: e.url,
    binding: { subject: b.subject, clientId: b.clientId, audience: b.audience, serverPath: b.serverPath },
    kind: e.kind,
    upstreamSessionId: e.upstreamSessionId as string | undefined,
    protocolVersion: e.protocolVersion as string | undefined,
    touchedAt: e.touchedAt,
    touchedBy: e.touchedBy,
  };
}

export interface SessionDirectoryOptions {
  instanceUrl: string;
  logger: Logger;
  /** `cluster.secret` (required with `cluster.redis`): the keys of the entries' and instance URLs' MACs are derived from it. */
  secret: string;
  /** Default: a new random ID. */
  instanceId?: string;
  now?: () => number;
}

/**
 * Opens the directory of this instance: starts its heartbeat at once and subscribes to ended
 * sessions. Never waits for Redis.
 * @see MCP 2025-11-25 basic/transports §Session Management
 */
export function createSessionDirectory(connection: RedisConnection, { instanceUrl, logger, secret, instanceId = newInstanceId(), now = Date.now }: SessionDirectoryOptions): SessionDirectory & { ready: Promise<void> } {
  const log = logger.child({ component: 'session-directory', instance: instanceId });
  const sessionKey = (id: string) => connection.key(`session:${id}`);
  const instanceKey = (id: string) => connection.key(`instance:${id}`);
  const channel = connection.key(SESSIONS_ENDED_CHANNEL);
  const ended = new Set<(id: string) => void>();
  const recovered = new Set<() => void>();
  let failing = false;
  let closed = false;
  const urlKey = derivedKey(secret, 'mcp-warden instance url v1');
  const entryKey = derivedKey(secret, 'mcp-warden session entry v1');
  /** The MAC of session `id`'s entry: every member, in one unambiguous encoding (JSON of an array). */
  const entryMac = (key: Buffer, id: string, e: DirectoryEntry) => macOf(key, [JSON.stringify([
    id, e.instance, e.url, e.kind, e.binding.subject, e.binding.clientId, e.binding.audience, e.binding.serverPath,
    e.upstreamSessionId ?? null, e.protocolVersion ?? null, e.touchedAt, e.touchedBy,
  ])]);
  const heartbeatValue = JSON.stringify({ url: instanceUrl, mac: macOf(urlKey, [instanceId, instanceUrl]) });

  /** Runs one command, bounded by TIMEOUT_MS (redis-connection.ts `command`); throws DirectoryUnavailable. */
  async function run<T>(command: () => Promise<T>): Promise<T> {
    if (!connection.client.isReady) throw new DirectoryUnavailable('Redis not connected');
    try {
      const value = await connection.command(command, TIMEOUT_MS);
      if (failing) {
        failing = false;
        log.info({ event: 'session_directory_available' }, 'the MCP session directory is reachable again');
      }
      return value;
    } catch (err) {
      if (!failing && !closed) {
        failing = true;
        log.warn({ event: 'session_directory_unavailable', reason: describeError(err).message }, 'Redis unavailable: sessions held here keep working; requests for sessions held elsewhere get 503 until it is back');
      }
      throw new DirectoryUnavailable(describeError(err).message);
    }
  }
  const quietly = (p: Promise<unknown>) => p.then(() => {}, () => {});

  const beat = () => quietly(run(() => connection.client.set(instanceKey(instanceId), heartbeatValue, { expiration: { type: 'PX', value: HEARTBEAT_TTL_MS } })));
  void beat();
  const heartbeat = setInterval(() => void beat(), HEARTBEAT_MS);
  heartbeat.unref();

  // After an outage: heartbeat at once, and let the registry write back what it holds.
  const onReady = () => {
    if (closed) return;
    void beat();
    for (const l of recovered) l();
  };
  connection.client.on('ready', onReady);

  const ready = connection.subscribe(channel, (message) => {
    if (!isSessionId(message)) {
      log.warn({ event: 'session_message_refused', channel }, 'a message on the ended-sessions channel is not a session ID; ignored');
      return;
    }
    for (const l of ended) l(message);
  }, (err) => {
    log.warn({ event: 'session_subscribe_failed', reason: describeError(err).message }, 'subscribing to ended sessions failed; trying again, and until then adopted copies end at their idle timeout');
  });

  return {
    ready,
    instanceId,
    instanceUrl,
    async register(id, entry, ttlMs) {
      const value: DirectoryEntry = { instance: instanceId, url: instanceUrl, ...entry, touchedAt: now() };
      const signed = { ...value, mac: entryMac(entryKey, id, value) };
      await quietly(run(() => connection.client.set(sessionKey(id), JSON.stringify(signed), { expiration: { type: 'PX', value: ttlMs } })));
    },
    async lookup(id) {
      if (!isSessionId(id)) return undefined;
      const text = await run(() => connection.client.get(sessionKey(id)));
      // Parsed once: the entry's members and its MAC come from the same object.
      const object = text ? parseJsonObject(text) : undefined;
      const entry = object && directoryEntryOf(object);
      if (text && !entry) log.warn({ event: 'session_entry_refused' }, 'a session directory entry is malformed; treated as absent');
      if (!entry) return undefined;
      if (!sameMac(entryMac(entryKey, id, entry), object!.mac)) {
        log.warn({ event: 'session_entry_forged', sessionId: id }, 'a session directory entry does not carry a valid MAC (written by something other than an instance); treated as absent');
        return undefined;
      }
      return entry;
    },
    async remove(id) {
      await quietly(run(() => connection.client.del(sessionKey(id))));
      await quietly(run(() => connection.client.publish(channel, id)));
    },
    async instanceUrlOf(instance) {
      if (!INSTANCE_ID.test(instance)) return undefined;
      const text = await run(() => connection.client.get(instanceKey(instance)));
      if (!text) return undefined;
      const value = parseJsonObject(text);
      const url = parseInstanceUrl(value?.url);
      if (!url || !sameMac(macOf(urlKey, [instance, value!.url as string]), value!.mac)) {
        log.warn({ event: 'instance_entry_refused', owner: instance }, 'an instance entry in Redis is malformed or does not carry a valid MAC (written by something other than an instance); its sessions are treated as held by a dead instance');
        return undefined;
      }
      return url;
    },
    onEnded(listener) {
      ended.add(listener);
      return () => ended.delete(listener);
    },
    onRecovered(listener) {
      recovered.add(listener);
      return () => recovered.delete(listener);
    },
    async close() {
      closed = true;
      clearInterval(heartbeat);
      connection.client.off('ready', onReady);
      await quietly(run(() => connection.client.del(instanceKey(instanceId))));
    },
  };
}
