/**
 * The per-session replay buffer behind `Last-Event-ID` (MCP 2025-11-25 transports §Resumability
 * and Redelivery): every event written to one of the session's SSE streams, oldest first, bounded
 * by count, bytes and age. What falls out is remembered per stream as a watermark, so a resume
 * that would skip an evicted event is refused instead of silently leaving a gap.
 */
import { ChurnMap } from '../kernel/churn-map.ts';

export interface ReplayLimits {
  maxEvents: number;
  maxBytes: number;
  retentionMs: number;
}

export interface ReplayEntry {
  stream: number;
  seq: number;
  text: string;
  bytes: number;
  at: number;
}

interface StreamState {
  /** Events of this stream held now. */
  held: number;
  /** Highest seq of this stream that was evicted (0: none). */
  evictedUpTo: number;
  /** The stream has ended: forgotten once nothing of it is held. */
  finished: boolean;
}

export class ReplayBuffer {
  private entries: ReplayEntry[] = [];
  private head = 0;
  private bytes = 0;
  private readonly streams = new ChurnMap<number, StreamState>();

  constructor(private readonly limits: ReplayLimits) {}

  /** Events held now (all streams). */
  get size(): number {
    return this.entries.length - this.head;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  /** Records one event; evicts the oldest beyond the limits. */
  push(stream: number, seq: number, text: string, now: number): void {
    const bytes = text.length;
    this.entries.push({ stream, seq, text, bytes, at: now });
    this.bytes += bytes;
    const state = this.state(stream);
    state.held++;
    while (this.size > this.limits.maxEvents || (this.bytes > this.limits.maxBytes && this.size > 0)) this.evictOldest();
    this.prune(now);
  }

  /** Drops events older than the retention time. */
  prune(now: number): void {
    const oldest = now - this.limits.retentionMs;
    while (this.size > 0 && this.entries[this.head]!.at < oldest) this.evictOldest();
  }

  /** The stream ended: its state goes once none of its events is held. */
  finish(stream: number): void {
    const state = this.streams.get(stream);
    if (!state) return;
    state.finished = true;
    if (state.held === 0) this.streams.delete(stream);
  }

  /** True while the buffer knows the stream (it holds or lost events of it, or it is live). */
  knows(stream: number): boolean {
    return this.streams.has(stream);
  }

  /**
   * Events of `stream` after `seq`, oldest first; undefined when an event after `seq` was evicted
   * (replaying the rest would leave a gap the client cannot see).
   */
  after(stream: number, seq: number): ReplayEntry[] | undefined {
    const state = this.streams.get(stream);
    if (state && state.evictedUpTo > seq) return undefined;
    const out: ReplayEntry[] = [];
    if (!state || state.held === 0) return out;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.stream === stream && e.seq > seq) out.push(e);
    }
    return out;
  }

  /**
   * The highest seq of `stream` evicted so far (0: none): where a connection that claims no
   * continuity starts, so it gets the oldest event still held instead of a gap it cannot resume.
   */
  evictedUpTo(stream: number): number {
    return this.streams.get(stream)?.evictedUpTo ?? 0;
  }

  /** Marks a stream as started (a priming event was sent), so a resume at its first ID is known. */
  open(stream: number): void {
    this.state(stream);
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
    this.streams.clear();
  }

  private state(stream: number): StreamState {
    let state = this.streams.get(stream);
    if (!state) {
      state = { held: 0, evictedUpTo: 0, finished: false };
      this.streams.set(stream, state);
    }
    return state;
  }

  private evictOldest(): void {
    const e = this.entries[this.head]!;
    this.entries[this.head] = undefined as unknown as ReplayEntry;
    this.head++;
    this.bytes -= e.bytes;
    const state = this.streams.get(e.stream);
    if (state) {
      state.held--;
      if (e.seq > state.evictedUpTo) state.evictedUpTo = e.seq;
      if (state.finished && state.held === 0) this.streams.delete(e.stream);
    }
    // Compact once the dead prefix dominates, so the array does not grow with the session.
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    if (this.size === 0) {
      this.entries = [];
      this.head = 0;
    }
  }
}
