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
 */
import type { ServerResponse } from 'node:http';
import { formatPrimingEvent, formatSseEvent } from './sse.ts';

/** What a stream needs from its session: IDs, the replay record, limits. */
export interface EventStreamOwner {
  /** Records an event of `stream` for replay and returns its event ID and seq. */
  record(stream: number, text: string): { id: string; seq: number };
  /** Held events of `stream` after `seq`; undefined when one of them was evicted. */
  after(stream: number, seq: number): { seq: number; text: string; id: string }[] | undefined;
  /** A fresh ID for a priming event (no data, nothing to replay). */
  primingId(stream: number): string;
  /** The stream ended (its response was sent or the session ended). */
  finished(stream: number): void;
  /** A slow client's connection was cut. */
  cut?(stream: number, behind: number): void;
  readonly maxUnreadBytes: number;
  readonly retryMs: number;
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

  constructor(
    readonly no: number,
    private readonly owner: EventStreamOwner,
  ) {}

  get connected(): boolean {
    return this.res !== undefined;
  }

  /**
   * Attaches a connection whose SSE headers are already sent: a priming event first when asked
   * (2025-11-25 and later only), then the held events after `from` (default: after the last one
   * written), then whatever comes. A newer connection replaces an older one.
   */
  attach(res: ServerResponse, from: number | undefined, prime: boolean): void {
    const old = this.res;
    this.res = res;
    this.waiting = false;
    this.behind = 0;
    if (old && old !== res) old.end();
    res.once('close', () => {
      if (this.res === res) this.res = undefined;
    });
    if (prime) this.write(res, formatPrimingEvent(this.owner.primingId(this.no), this.owner.retryMs));
    if (from !== undefined) this.lastWritten = from;
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
   * it all). `abort` (the session ends): a client that is not reading is not waited for.
   */
  finish(abort = false): void {
    if (!this.ended) {
      this.ended = true;
      this.owner.finished(this.no);
    }
    const res = this.res;
    if (!res) return;
    if (!this.waiting) {
      this.res = undefined;
      res.end();
    } else if (abort) {
      this.res = undefined;
      res.destroy();
    }
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
    if (this.ended) {
      this.res = undefined;
      res.end();
    }
  }

  private write(res: ServerResponse, chunk: string): boolean {
    if (res.write(chunk)) return true;
    this.waiting = true;
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
    this.res = undefined;
    this.waiting = false;
    this.behind = 0;
    res.destroy();
  }
}
