/**
 * The one Redis connection of an instance (config `cluster.redis`): a command client and a
 * subscriber (over RESP2 a subscribed connection runs nothing but SUBSCRIBE-family commands and
 * PING; node-redis speaks RESP3, where it could, but on a connection of their own messages never
 * wait behind commands).
 *
 * Outage behaviour, the same for both:
 * - Opening never waits for Redis and never fails start-up: an instance starts, and serves, with
 *   Redis down; what Redis carries degrades as docs/deployment.md ("Scale-out") says.
 * - Each connection reconnects forever with exponential backoff (100 ms doubling, at most 5 s,
 *   with jitter so a fleet does not reconnect in step); the subscriber subscribes again itself.
 * - A Redis that stops answering is an outage too, not only one that refuses connections: a
 *   frozen server, or a network path that drops packets, keeps the TCP connection open and
 *   silent, and node-redis alone would wait on it for ever (its connect timeout ends at the TCP
 *   connect; a handshake sent after it, or a command, is never given up on). So each connection
 *   pings Redis `pingIntervalMs` after its last answer, and is dropped and reconnected, like any
 *   other lost connection, once Redis has not answered for `silenceTimeoutMs`: the subscriber
 *   when nothing has passed either way for that long (a handshake included), the command client
 *   when no PING has been answered for that long (it is written to all the time, and a write
 *   counts as traffic to the socket's own timeout). An error reply is an answer.
 * - Commands fail at once while disconnected (no offline queue): a caller on a request path never
 *   waits for an outage to end, it takes its fallback.
 * - A caller on a request path runs its commands through `command`, which bounds each by the
 *   caller's own limit. A command given up unanswered means Redis may be frozen, and every later
 *   command would then wait its whole limit too, until the watchdog above ends the connection
 *   (up to `silenceTimeoutMs`). So from then on a command whose limit is no longer than the one
 *   given up is not waited for (it fails at once; it is still sent, so a write lands if Redis was
 *   only slow), until Redis answers anything on the command client: a late answer, a PING, or a
 *   new connection's handshake. Commands already waiting, and the first with a longer limit, still
 *   wait theirs out. A Redis that was only slow is waited for again as soon as it answers again.
 * - One warning when an outage starts and one info line when both connections are back, whatever
 *   the number of failed attempts in between. Logs name the host and port, never the URL (it may
 *   carry a password).
 */
import { performance } from 'node:perf_hooks';
import { createClient, ErrorReply } from 'redis';
import { describeError, type Logger } from '../log.ts';

export type RedisClient = ReturnType<typeof createClient>;

/** Commands sent on the command client and not yet answered, at most (see `openRedisConnection`). */
export const MAX_QUEUED_COMMANDS = 10_000;

/** Why a bounded command (`RedisConnection.command`) was not sent, not waited for, or given up. */
export class RedisUnavailable extends Error {
  constructor(
    /**
     * `not-connected`: the client is down (nothing sent); `no-answer`: Redis did not answer within
     * the command's limit; `still-no-answer`: sent, not waited for, as Redis has answered nothing
     * since a command with at least this limit was given up.
     */
    readonly kind: 'not-connected' | 'no-answer' | 'still-no-answer',
    message: string,
  ) {
    super(message);
    this.name = 'RedisUnavailable';
  }
}

export interface RedisConnection {
  /** Runs commands; fails at once while disconnected. */
  readonly client: RedisClient;
  /** For SUBSCRIBE only, through `subscribe`; its subscriptions survive reconnects. */
  readonly subscriber: RedisClient;
  /**
   * SUBSCRIBE that holds until Redis confirms it. node-redis keeps a channel's listener (and
   * subscribes it again after each reconnect) only once Redis has answered the SUBSCRIBE; one lost
   * with its connection is dropped for good. So a failed SUBSCRIBE is sent again once the
   * subscriber is ready, backing off like a reconnect. `onFailure` hears the first failure of a
   * run of failed attempts (a refusal Redis repeats, an ACL for one, is reported once). Settles
   * once the first attempt is answered or fails; while Redis has never been reached it waits in
   * the subscriber's queue, so start-up must not wait for it.
   */
  subscribe(channel: string, listener: (message: string) => void, onFailure: (err: unknown) => void): Promise<void>;
  /**
   * Runs `run` (commands on `client`) within `timeoutMs`, the caller's budget on its request path.
   * Rejects with RedisUnavailable: at once while the client is down (`run` is not called), at once
   * while Redis has answered nothing since a command with a limit no shorter than `timeoutMs` was
   * given up (`run` is called, its answer not waited for; see the module comment), and when the
   * limit passes. Otherwise rejects as `run` does: Redis' own error for an error reply, node-redis'
   * for a connection lost meanwhile.
   */
  command<T>(run: () => Promise<T>, timeoutMs: number): Promise<T>;
  /** `keyPrefix` + name: every key and channel of this deployment. */
  key(name: string): string;
  /** True while both connections are up. */
  isReady(): boolean;
  close(): Promise<void>;
}

export interface RedisConnectionOptions {
  url: string;
  keyPrefix: string;
  logger: Logger;
  /** Longest wait between reconnect attempts, ms (default 5000). */
  maxBackoffMs?: number;
  /** How long after Redis last answered a PING a ready connection sends the next, ms (default 5000). */
  pingIntervalMs?: number;
  /**
   * How long Redis may leave a connection unanswered before it is dropped and reconnected, ms
   * (default 15 000). Longer than `pingIntervalMs`, so a connection whose pings are answered
   * never reaches it; a handshake or a PING left unanswered does.
   */
  silenceTimeoutMs?: number;
}

/** Delay before reconnect attempt `retries` (0-based): 100 ms doubling up to `maxMs`, ±20% jitter. */
export function reconnectDelayMs(retries: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, 100 * 2 ** Math.min(retries, 16));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** host:port of a Redis URL, for logs (no user, no password, no query). */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'redis (unparseable URL)';
  }
}

/**
 * Opens the connections in the background and returns at once.
 * @see https://redis.io/docs/latest/develop/interact/pubsub/ (a subscribed connection runs only SUBSCRIBE-family commands, and PING)
 */
export function openRedisConnection({ url, keyPrefix, logger, maxBackoffMs = 5000, pingIntervalMs = 5000, silenceTimeoutMs = 15_000 }: RedisConnectionOptions): RedisConnection {
  // 0 would mean no PING at all (node-redis), and idle connections would be dropped.
  if (!(pingIntervalMs > 0 && silenceTimeoutMs > pingIntervalMs)) throw new RangeError('pingIntervalMs must be positive and silenceTimeoutMs longer, or idle connections would be dropped between pings');
  const where = describeRedisUrl(url);
  const log = logger.child({ component: 'redis' });
  const options = {
    url,
    disableOfflineQueue: true,
    // Commands sent and not yet answered, at most: a frozen Redis holds every one until the
    // watchdog drops the connection (commands not waited for are still sent: `command`), so the
    // memory they hold is bounded (~1.5 KB each); past it a command fails at once.
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    // PING is allowed on a subscribed connection too, so the subscriber pings as well
    // (https://redis.io/docs/latest/commands/ping/).
    pingInterval: pingIntervalMs,
    socket: {
      connectTimeout: 2000,
      // node-redis arms this once the TCP connection is up (Node's socket inactivity timeout): a
      // handshake, or a PING on an otherwise quiet connection, that gets no answer ends the
      // connection.
      socketTimeout: silenceTimeoutMs,
      // Our own strategy is what reconnects after that: node-redis' default gives up for good
      // on a socket timeout.
      reconnectStrategy: (retries: number) => reconnectDelayMs(retries, maxBackoffMs),
    },
  };
  const client: RedisClient = createClient(options);
  const subscriber: RedisClient = client.duplicate({ ...options, disableOfflineQueue: false });

  // One outage is the time from the first failure until both connections are ready again.
  let down = false;
  let closed = false;
  const isReady = () => client.isReady && subscriber.isReady;
  const onError = (err: unknown) => {
    if (closed || down) return;
    down = true;
    const reason = describeError(err);
    log.warn({ event: 'redis_unavailable', redis: where, reason: reason.message }, 'Redis unreachable: revocations reach other instances through the database only, sessions held by other instances and the account page answer 503, limits are counted per instance, until it is back; reconnecting with backoff');
  };
  const onReady = () => {
    if (closed || !isReady()) return;
    if (down) log.info({ event: 'redis_recovered', redis: where }, 'Redis reachable again');
    down = false;
  };
  // The command client's PINGs must be answered (module comment). node-redis sends the next PING
  // only once the last is answered, so a frozen server leaves `answeredAt` behind.
  let answeredAt = performance.now();
  // Answers on the command client, counted for `command`: a command with a limit of L ms given
  // up at count n leaves later ones with limits up to L not waited for while the count is n.
  let answers = 0;
  let givenUpAt = -1;
  let givenUpLimitMs = 0;
  const heard = () => { answers++; };
  const heardIfReply = (err: unknown) => { if (err instanceof ErrorReply) answers++; };

  for (const c of [client, subscriber]) {
    // Without an 'error' listener node-redis' errors would be thrown as unhandled: never crash.
    c.on('error', (err: unknown) => {
      // An error reply on a ready connection is Redis answering (BUSY while a script runs, a
      // refused command), not an outage; on one that is not ready (a refused handshake: a wrong
      // password) it is one.
      if (err instanceof ErrorReply && c.isReady) {
        if (c === client) {
          answeredAt = performance.now();
          heard();
        }
        return;
      }
      onError(err);
    });
    c.on('ready', onReady);
    c.connect().catch(onError);
  }

  // The client holds no subscriptions, so dropping it is destroy() and connect() again.
  client.on('ready', () => { answeredAt = performance.now(); heard(); });
  client.on('ping-interval', () => { answeredAt = performance.now(); heard(); });
  const overdue = () => !closed && client.isReady && performance.now() - answeredAt > silenceTimeoutMs;
  const watchdog = setInterval(() => {
    if (!overdue()) return;
    // After a stalled event loop, timers run before what arrived meanwhile is read: look again
    // once the poll phase has run (setImmediate), so a PONG already received counts.
    setImmediate(() => {
      if (!overdue()) return;
      onError(new Error(`no answer to PING within ${silenceTimeoutMs} ms`));
      client.destroy();
      answeredAt = performance.now();
      client.connect().catch(onError);
    });
  }, Math.min(1000, pingIntervalMs));
  watchdog.unref();

  const subscribe = (channel: string, listener: (message: string) => void, onFailure: (err: unknown) => void): Promise<void> => {
    let failures = 0;
    const attempt = (): Promise<void> => subscriber.subscribe(channel, listener).then(() => { failures = 0; }, (err: unknown) => {
      // Closed (before it ever connected, or since): nothing to keep.
      if (closed || !subscriber.isOpen) return;
      if (failures === 0) onFailure(err);
      // Backed off, at most `maxBackoffMs` apart, even when the subscriber is still ready (Redis
      // refused the command itself, an ACL for one).
      setTimeout(() => {
        if (closed) return;
        if (subscriber.isReady) void attempt();
        else subscriber.once('ready', () => { if (!closed) void attempt(); });
      }, reconnectDelayMs(failures++, maxBackoffMs)).unref();
    });
    return attempt();
  };

  const command = <T>(run: () => Promise<T>, timeoutMs: number): Promise<T> => {
    if (!client.isReady) return Promise.reject(new RedisUnavailable('not-connected', 'Redis not connected'));
    let running: Promise<T>;
    try {
      running = run();
    } catch (err) {
      return Promise.reject(err);
    }
    if (givenUpAt === answers && timeoutMs <= givenUpLimitMs) {
      // Sent all the same, so a write still lands if Redis was only slow (as a command given up
      // does), and its answer counts; only not waited for.
      running.then(heard, heardIfReply);
      return Promise.reject(new RedisUnavailable('still-no-answer', `not waited for: Redis has not answered since a command with a limit of ${givenUpLimitMs} ms was given up`));
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const giveUp = () => {
        // After a stalled event loop timers run before what arrived meanwhile is read: look again
        // once the poll phase has run (setImmediate), so an answer already received counts.
        setImmediate(() => {
          if (settled) return;
          settled = true;
          // Later commands with no longer a limit are not waited for (the module comment).
          if (givenUpAt === answers) givenUpLimitMs = Math.max(givenUpLimitMs, timeoutMs);
          else {
            givenUpAt = answers;
            givenUpLimitMs = timeoutMs;
          }
          reject(new RedisUnavailable('no-answer', `no answer within ${timeoutMs} ms`));
        });
      };
      // The limit runs from when the command is written: node-redis writes in a setImmediate,
      // queued by `run` before this one, so a stall before the write is not counted against Redis.
      setImmediate(() => {
        if (settled) return;
        timer = setTimeout(giveUp, timeoutMs);
        timer.unref();
      });
      running.then((value) => {
        heard();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }, (err: unknown) => {
        heardIfReply(err);
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      });
    });
  };

  return {
    client,
    subscriber,
    subscribe,
    command,
    key: (name) => `${keyPrefix}${name}`,
    isReady,
    async close() {
      closed = true;
      clearInterval(watchdog);
      for (const c of [client, subscriber]) {
        // destroy: do not wait for a server that may be gone.
        if (c.isOpen) c.destroy();
      }
    },
  };
}
