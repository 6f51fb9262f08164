/**
 * The sockets of a PostgreSQL pool, so that the connections a silent server holds are let go of.
 *
 * pg ends a connection by sending Terminate and ending its side of the socket, then waits for the
 * server to close it (lib/connection.js `end`). A live server does so at once when it reads
 * Terminate (PostgreSQL Frontend/Backend Protocol, Message Flow §Termination). A frozen one, or
 * a failover whose old address drops packets, never does: the socket stays open (a frozen
 * server's kernel answers TCP keep-alive probes; on a path that drops packets they fail only after
 * minutes), and an open socket keeps the process from exiting after SIGTERM. pg-pool's `end`
 * does not wait for its connections to close either (pg-pool `_remove`), so nothing else would
 * notice.
 *
 * On a TLS connection pg ends the TLS socket, not the one it was layered on: such a connection
 * ended during a freeze (an idle one the pool let go of) stays open until the pool closes, when
 * `closeAll` destroys it.
 */
import { Socket } from 'node:net';

/** How long the server has to close a connection we ended; only ever waited out when it no longer answers. */
export const CLOSE_GRACE_MS = 1_000;

export interface PoolSockets {
  /**
   * pg's `stream` option: a new socket, followed until it closes. A TLS connection is layered on
   * it: destroying this socket closes that one, but pg ends the TLS socket, not this one.
   */
  open(): Socket;
  /** Waits up to the grace for every socket to close, then destroys those still open. */
  closeAll(): Promise<void>;
  /** Sockets not closed yet. */
  readonly size: number;
}

export function poolSockets(graceMs = CLOSE_GRACE_MS): PoolSockets {
  const sockets = new Set<Socket>();
  let waiters: (() => void)[] = [];
  /** Resolves once no socket is open. */
  const allClosed = () => new Promise<void>((resolve) => {
    if (sockets.size === 0) resolve();
    else waiters.push(resolve);
  });
  return {
    open() {
      const s = new Socket();
      sockets.add(s);
      // A connection pg ended without destroying it (an idle one the pool let go of, or the pool
      // closing) is destroyed once the grace is over. On a plain TCP connection only: on a TLS
      // one pg ends the TLS socket, not this one, and `closeAll` lets go of it when the pool closes.
      s.once('finish', () => {
        const timer = setTimeout(() => s.destroy(), graceMs);
        timer.unref();
        s.once('close', () => clearTimeout(timer));
      });
      s.once('close', () => {
        sockets.delete(s);
        if (sockets.size > 0) return;
        const done = waiters;
        waiters = [];
        for (const resolve of done) resolve();
      });
      return s;
    },
    async closeAll() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([allClosed(), new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); })]);
      clearTimeout(timer);
      // Destroyed, a connection ends at once (its 'close' comes in the next turn of the event
      // loop): pg rejects whatever was still in flight on it.
      for (const s of sockets) s.destroy();
      await allClosed();
    },
    get size() {
      return sockets.size;
    },
  };
}
