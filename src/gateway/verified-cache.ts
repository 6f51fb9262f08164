/**
 * The verified-token cache of the token verifier: per protected server (its path), token text →
 * the Caller its verification produced. A JWT is immutable (RFC 9068 §2.2 claims signed), so a
 * later use only needs the time and revocation checks the verifier makes on every hit.
 *
 * Plain Maps instead of an LRU: a hit is one lookup by the token string as the Authorization
 * parse produced it, no `path + "\n" + token` text to build, flatten and hash, no recency list
 * to relink. Bounded in total entries; when full, the oldest entry of the server being added to
 * leaves first (insertion order), so a flood of new tokens pushes out old ones, never all at
 * once; an evicted token is only verified again.
 */
import type { Caller } from '../kernel/caller.ts';

export class VerifiedCache {
  private readonly byServer = new Map<string, Map<string, Caller>>();
  private size = 0;

  constructor(private readonly max: number) {}

  get(path: string, token: string): Caller | undefined {
    return this.byServer.get(path)?.get(token);
  }

  set(path: string, token: string, caller: Caller): void {
    let entries = this.byServer.get(path);
    if (!entries) this.byServer.set(path, (entries = new Map()));
    if (entries.delete(token)) this.size--;
    while (this.size >= this.max) this.evictOne(entries);
    entries.set(token, caller);
    this.size++;
  }

  delete(path: string, token: string): void {
    if (this.byServer.get(path)?.delete(token)) this.size--;
  }

  clear(): void {
    this.byServer.clear();
    this.size = 0;
  }

  get count(): number {
    return this.size;
  }

  /** The oldest entry of `preferred`, or of any server when that one holds none. */
  private evictOne(preferred: Map<string, Caller>): void {
    const from = preferred.size > 0 ? preferred : [...this.byServer.values()].find((m) => m.size > 0);
    const oldest = from?.keys().next();
    if (!from || !oldest || oldest.done) {
      this.size = 0;
      return;
    }
    from.delete(oldest.value);
    this.size--;
  }
}
