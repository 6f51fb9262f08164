/**
 * One logical SSE stream of a session (MCP 2025-11-25 transports): the GET stream or a POST
 * response stream. It outlives its HTTP connections: every event is recorded for replay first,
 * then written to the connection attached now, if any. A disconnect detaches the connection and
 * the stream goes on (§Sending Messages: disconnection is not cancellation); a GET with
 * `Last-Event-ID` attaches a new connection after replaying what was missed (§Resumability).
 *
 * Backpressure: writes never wait, and never pile up in memory. When `res.write` returns false the
 * stream stops writing and lets later events wait in the replay buffer; on `drain` it catches up
 * from there (a replay after a resume is paced the same way). A client that falls more than
 * `maxUnreadBytes` behind, or so far that the replay buffer lost events it has not been sent, is
 * cut (the connection is destroyed); it resumes with its last event ID. Other streams and
 * sessions never wait, and a stdio upstream's output keeps flowing.
 *
 * An ended stream whose client is not reading keeps its connection only to drain: the owner knows
 * it (and destroys it when the session ends), and it is cut if not drained within
 * `drainTimeoutMs`, so a client that never reads cannot hold sockets and events open.
 */
import type { ServerResponse } from 'node:http';
import { formatPrimingEvent, formatSseEvent } from './sse.ts';

/** What a stream needs from its session: IDs, the replay record, limits. */
export interface EventStreamOwner {
  /** Records an event of `stream` for replay and returns its event ID and seq. */
  record(stream: number, text: string): { id: string; seq: number };
  /** Held events of `stream` after `seq`; undefined when one of them was evicted. */
  after(stream: number, seq: number): { seq: number; text: string; id: string }[] | undefined;
  /** Highest seq of `stream` no longer held for replay (0: none). */
  evictedUpTo(stream: number): number;
  /** A fresh ID for a priming event (no data, nothing to replay). */
  primingId(stream: number): string;
  /** The stream ended (its response was sent or the session ended). */
  finished(stream: number): void;
  /**
   * An ended stream still writes to a client that is not reading (`true`), or no longer (`false`):
   * the owner keeps it, so ending the session can destroy that connection.
   */
  draining(stream: EventStream, on: boolean): void;
  /** A slow client's connection was cut. */
  cut?(stream: number, behind: number): void;
  readonly maxUnreadBytes: number;
  readonly retryMs: number;
  /** How long an ended stream may take to drain to its client before the connection is cut. */
  readonly drainTimeoutMs: number;
}

export class EventStream {
  private res: ServerResponse | undefined;
  /** Seq of the last event written to a connection: where the next connection or a drain goes on. */
  lastWritten = 0;
  ended = false;
  /** A write returned false: events wait in the replay buffer until `drain`. */
  private waiting = false;
  /** Bytes of events sent while waiting (how far behind the client is). */
  private behind = 0;
  /** Set while an ended stream drains to its connection: the deadline of that drain. */
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly no: number,
    private readonly owner: EventStreamOwner,
  ) {}

  get connected(): boolean {
    return this.res !== undefined;
  }

  /**
   * Attaches a connection whose SSE headers are already sent: a priming event first when asked
   * (2025-11-25 and later only), then the held events after `from`, then whatever comes. A newer
   * connection replaces an older one (one its client is not reading is destroyed, not left open).
   *
   * `from` undefined: the connection claims no continuity (a GET without Last-Event-ID, or a new
   * POST stream), so it goes on after the last event written, or from the oldest event still held
   * when some after that were evicted. Only a resume (`from` given) can hit a gap and be cut.
   */
  attach(res: ServerResponse, from: number | undefined, prime: boolean): void {
    if (this.res && this.res !== res) this.release(this.waiting);
    this.res = res;
    this.waiting = false;
    this.behind = 0;
    res.once('close', () => {
      if (this.res !== res) return;
      this.res = undefined;
      this.waiting = false;
      this.settle();
    });
    if (prime) this.write(res, formatPrimingEvent(this.owner.primingId(this.no), this.owner.retryMs));
    this.lastWritten = from ?? Math.max(this.lastWritten, this.owner.evictedUpTo(this.no));
    this.pump();
  }

  /** One JSON-RPC message as an event: recorded, then written if a connection is attached and keeping up. */
  send(text: string): void {
    if (this.ended) return;
    const { id, seq } = this.owner.record(this.no, text);
    const res = this.res;
    if (!res) return;
    if (this.waiting) {
      this.behind += text.length;
      if (this.behind > this.owner.maxUnreadBytes) this.cut();
      return;
    }
    this.lastWritten = seq;
    this.write(res, formatSseEvent(id, text));
  }

  /** An SSE comment (HTML §9.2.6: ignored by clients), for keep-alive. */
  comment(): void {
    if (this.res && !this.waiting) this.res.write(':\n\n');
  }

  /**
   * MCP transports: after the response the server SHOULD terminate the stream (once the client has
   * it all: a client that is not reading gets `drainTimeoutMs` to catch up). `abort` (the session
   * ends): a client that is not reading is not waited for.
   */
  finish(abort = false): void {
    if (!this.ended) {
      this.ended = true;
      this.owner.finished(this.no);
    }
    const res = this.res;
    if (!res) return;
    if (!this.waiting) this.release(false);
    else if (abort) this.release(true);
    else this.linger(res);
  }

  /** Writes held events after `lastWritten` until the connection pushes back. */
  private pump(): void {
    const res = this.res;
    if (!res || this.waiting) return;
    const events = this.owner.after(this.no, this.lastWritten);
    if (events === undefined) {
      // The client fell behind the replay buffer: it cannot get every event on this connection.
      this.cut();
      return;
    }
    for (const e of events) {
      this.lastWritten = e.seq;
      if (!this.write(res, formatSseEvent(e.id, e.text))) return;
    }
    if (this.ended) this.release(false);
  }

  private write(res: ServerResponse, chunk: string): boolean {
    if (res.write(chunk)) return true;
    this.waiting = true;
    // An ended stream (a replay of an answered one) that the client does not read: a bounded drain.
    if (this.ended) this.linger(res);
    res.once('drain', () => {
      if (this.res !== res) return;
      this.waiting = false;
      this.behind = 0;
      this.pump();
    });
    return false;
  }

  /** Ends a connection that does not keep up; its events stay held for a resume. */
  private cut(): void {
    const res = this.res;
    if (!res) return;
    this.owner.cut?.(this.no, this.behind + res.writableLength);
    this.release(true);
  }

  /**
   * The stream ended but its client has not read everything: the owner keeps it (ending the session
   * destroys it), and it is cut once `drainTimeoutMs` passes, so a client that never reads cannot
   * keep the socket and its queued events alive.
   */
  private linger(res: ServerResponse): void {
    if (this.drainTimer) return;
    this.owner.draining(this, true);
    this.drainTimer = setTimeout(() => {
      if (this.res === res) this.cut();
      else this.settle();
    }, this.owner.drainTimeoutMs);
    this.drainTimer.unref();
  }

  /** The drain is over (drained, cut or the client left). */
  private settle(): void {
    if (!this.drainTimer) return;
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.owner.draining(this, false);
  }

  /** Lets go of the connection: ended after what was written (`destroy`: at once, queued bytes dropped). */
  private release(destroy: boolean): void {
    const res = this.res;
    if (!res) return;
    this.res = undefined;
    this.waiting = false;
    this.behind = 0;
    this.settle();
    if (destroy) res.destroy();
    else res.end();
  }
}
