/**
 * A batch of audit events as it crosses to the writer thread (sqlite-worker-sink.ts →
 * sqlite-writer.worker.ts): each distinct text once, in a table, and every event as a fixed run of
 * numbers in a Float64Array that is transferred, not copied. The events of a batch repeat the same
 * few texts (user, client, server, method, tool, rule, reason, session), so this is far less to
 * write than their JSON (~0.9 µs an event) or their structured clone (~1.5 µs); the thread turns
 * the numbers back into rows (row.ts's columns, same values as `toRow`).
 */
import type { AuditRow } from './row.ts';
import type { AuditEvent } from './types.ts';

/** One batch on the wire. */
export interface EncodedBatch {
  /** The texts the numbers point to. */
  strings: string[];
  /** SLOTS numbers per event (see `encodeBatch`). */
  values: Float64Array;
}

/** Numbers per event: time, subject, client, roles, server, method, target, decision, rule, reason, latency, arguments, session, count, remote address. */
const SLOTS = 15;
/** A null (or absent) text. */
const NONE = -1;

/** The JSON of each roles array, made once per array (a principal's roles are one array for its life). */
const rolesJson = new WeakMap<readonly string[], string>();

/** The last arguments object encoded and its JSON (see the loop below). */
let lastArguments: unknown;
let lastArgumentsJson = '';

/** The events of one batch, encoded. The buffer of `values` is meant to be transferred. */
export function encodeBatch(events: readonly AuditEvent[]): EncodedBatch {
  const table = new TextTable();
  const values = new Float64Array(events.length * SLOTS);
  let o = 0;
  for (let n = 0; n < events.length; n++) {
    const e = events[n]!;
    let roles = rolesJson.get(e.roles);
    if (roles === undefined) {
      roles = JSON.stringify(e.roles);
      rolesJson.set(e.roles, roles);
    }
    values[o] = table.index(o, e.time);
    values[o + 1] = table.index(o + 1, e.subject);
    values[o + 2] = table.index(o + 2, e.clientId);
    values[o + 3] = table.index(o + 3, roles);
    values[o + 4] = table.index(o + 4, e.server);
    values[o + 5] = table.index(o + 5, e.method);
    values[o + 6] = table.index(o + 6, e.target);
    values[o + 7] = table.index(o + 7, e.decision);
    values[o + 8] = table.index(o + 8, e.rule);
    values[o + 9] = table.index(o + 9, e.reason);
    values[o + 10] = e.latencyUs;
    let args = NONE;
    if (e.arguments !== undefined) {
      // The same frozen arguments object as the last event's (redact.ts returns one for the same
      // argument names) is serialised once. Only a frozen one: an object changed between two
      // events must not be written with its earlier JSON.
      if (e.arguments !== lastArguments || !Object.isFrozen(e.arguments)) {
        lastArguments = e.arguments;
        lastArgumentsJson = JSON.stringify(e.arguments);
      }
      args = table.index(o + 11, lastArgumentsJson);
    }
    values[o + 11] = args;
    values[o + 12] = table.index(o + 12, e.sessionId);
    values[o + 13] = e.count ?? 1;
    values[o + 14] = table.index(o + 14, e.remoteAddress);
    o += SLOTS;
  }
  return { strings: table.strings, values };
}

/**
 * The texts of one batch, each once. Consecutive events mostly repeat a slot's text (the same
 * string object, or an equal one): that is checked against the slot's last text before the map.
 */
class TextTable {
  readonly strings: string[] = [];
  readonly #index = new Map<string, number>();
  readonly #last: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  readonly #lastIndex = new Float64Array(SLOTS);

  /** The index of `s` (seen in value position `at`), NONE for null or absent. */
  index(at: number, s: string | null | undefined): number {
    if (s === null || s === undefined) return NONE;
    const slot = at % SLOTS;
    if (this.#last[slot] === s) return this.#lastIndex[slot]!;
    let i = this.#index.get(s);
    if (i === undefined) {
      i = this.strings.push(s) - 1;
      this.#index.set(s, i);
    }
    this.#last[slot] = s;
    this.#lastIndex[slot] = i;
    return i;
  }
}

/** The rows of an encoded batch, as `toRow` makes them from the events. */
export function decodeBatch(batch: EncodedBatch): AuditRow[] {
  const { strings, values } = batch;
  const text = (i: number): string | null => (i === NONE ? null : strings[i]!);
  const rows: AuditRow[] = [];
  for (let o = 0; o + SLOTS <= values.length; o += SLOTS) {
    const time = strings[values[o]!]!;
    const timeMs = Date.parse(time);
    rows.push([
      time,
      Number.isNaN(timeMs) ? 0 : timeMs,
      strings[values[o + 1]!]!,
      strings[values[o + 2]!]!,
      strings[values[o + 3]!]!,
      strings[values[o + 4]!]!,
      strings[values[o + 5]!]!,
      text(values[o + 6]!),
      strings[values[o + 7]!]!,
      text(values[o + 8]!),
      strings[values[o + 9]!]!,
      values[o + 10]!,
      text(values[o + 11]!),
      text(values[o + 12]!),
      values[o + 13]!,
      text(values[o + 14]!),
    ]);
  }
  return rows;
}
