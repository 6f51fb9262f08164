/**
 * A Map for entries that come and go all the time inside an object that lives long: a session's
 * pending requests, a writer's batches in flight. It behaves as a Map; what it adds is that its
 * hash table is replaced with a young one at least every `REFRESH_MS`, which keeps a V8 behaviour
 * from turning every garbage collection of young objects into a copy of every request in flight.
 *
 * The behaviour (V8 11–12, Node 20 and 22; src/objects/ordered-hash-table.cc): a Map keeps its
 * entries in a hash table that is rebuilt whenever it fills up with deleted entries, and the new
 * table is allocated in the same generation as the old one. The old table is kept pointing to its
 * successor (for iterators still on it) and keeps its entries. Once one table is in the old
 * generation (it lived across two scavenges: a quiet session, a long request), every later table
 * is allocated old too, and each one, when it is replaced, still points to the young values put
 * in it. A scavenge takes such pointers from old objects as roots without knowing the old table is
 * garbage (only a full collection would), so every value a table held when it was rebuilt, and
 * everything it references (a request's parsed body, its exchange, its `ServerResponse`), is
 * copied and then promoted to the old generation, where it stays until the next full collection.
 *
 * Measured on the gateway (docs/benchmarks.md, "Young tables for churning maps"): once in that
 * state, which a second session's traffic or a pause in one session's is enough to reach, every
 * scavenge promoted ~2 MB instead of ~0.07 MB, and scavenges took ~8 µs per request instead of
 * ~2. A Map made anew starts with a young table, so replacing it before its table can grow old
 * ends the chain; copying the live entries (a few dozen) every 10 ms costs nothing measurable.
 *
 * One difference from a Map: an iterator made before a `set` may go on over the table as it was
 * (without that entry, and with entries deleted after the `set`). Callers collect what they want
 * to change while iterating and change it afterwards (as they must with a Map anyway to be safe).
 */

/** A table older than this is replaced at the next `set`: well under two scavenges under load (~35 ms apart here). */
const REFRESH_MS = 10;

export class ChurnMap<K, V> implements Iterable<[K, V]> {
  #map = new Map<K, V>();
  #madeAt = performance.now();

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): this {
    const now = performance.now();
    if (now - this.#madeAt >= REFRESH_MS) {
      // A copy in insertion order: iteration order is the Map's, as callers expect.
      this.#map = new Map(this.#map);
      this.#madeAt = now;
    }
    this.#map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    const old = this.#map;
    this.#map = new Map();
    this.#madeAt = performance.now();
    // As Map.clear(): iterators still on the old table end.
    old.clear();
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map.entries();
  }
}
