/**
 * oidc-provider's storage adapter over the Store contract. One adapter instance per model name
 * (Session, Grant, AuthorizationCode, RefreshToken, Client, Interaction, …).
 *
 * Two policies live here because they are about what is stored:
 * - client secrets are stored as SHA-256 hashes, never in clear (see client-secret.ts);
 * - a rotated refresh token may be used exactly once more within `refreshGraceSeconds` after its
 *   first use, for clients that refresh twice in parallel; any further use, or one after the
 *   window, oidc-provider sees as consumed and revokes the whole grant (OAuth 2.1 §4.3.1 /
 *   RFC 9700 §4.14.2 refresh token reuse detection).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ModelPayload, Store } from '../storage/store.ts';
import { hashClientSecret, isHashedClientSecret } from './client-secret.ts';

export interface AdapterOptions {
  store: Store;
  now: () => number;
  refreshGraceSeconds: number;
}

/** The adapter class oidc-provider instantiates with a model name. @see oidc-provider docs: adapter */
/** How long a client's metadata is served from memory; changes by another process (the CLI) show after this. */
const CLIENT_CACHE_MS = 5_000;

/** Marks a refresh token whose one grace reuse is spent (kept for the grace window only). */
const GRACE_USE_MODEL = 'RefreshTokenGraceUse';

export function createAdapterClass({ store, now, refreshGraceSeconds }: AdapterOptions): new (name: string) => Adapter {
  const models = store.models;
  // Clients are read on every token request and change rarely: a short, bounded cache.
  const clientCache = new Map<string, { payload: ModelPayload | undefined; until: number }>();
  // Grace reuses being claimed right now in this process: claimed synchronously, so two
  // concurrent replays cannot both see the grace as unspent before the marker is stored.
  const claiming = new Set<string>();

  /** Spends the token's one grace reuse; false when it was spent already. */
  async function claimGraceReuse(id: string, consumedMs: number): Promise<boolean> {
    if (claiming.has(id)) return false;
    claiming.add(id);
    try {
      if (await models.find(GRACE_USE_MODEL, id)) return false;
      await models.upsert(GRACE_USE_MODEL, id, { usedAt: now() }, consumedMs + refreshGraceSeconds * 1000 + 1000);
      return true;
    } finally {
      claiming.delete(id);
    }
  }
  return class StoreAdapter implements Adapter {
    readonly name: string;
    constructor(name: string) { this.name = name; }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      let stored = payload as ModelPayload;
      if (this.name === 'Client' && typeof stored.client_secret === 'string' && !isHashedClientSecret(stored.client_secret)) {
        stored = { ...stored, client_secret: hashClientSecret(stored.client_secret) };
      }
      await models.upsert(this.name, id, stored, expiresIn ? now() + expiresIn * 1000 : undefined);
      if (this.name === 'Client') clientCache.delete(id);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') {
        const hit = clientCache.get(id);
        if (hit && hit.until > now()) return hit.payload ? (structuredClone(hit.payload) as AdapterPayload) : undefined;
        const fresh = await models.find(this.name, id);
        if (clientCache.size >= 1000) clientCache.clear();
        clientCache.set(id, { payload: fresh, until: now() + CLIENT_CACHE_MS });
        return fresh as AdapterPayload | undefined;
      }
      const payload = await models.find(this.name, id);
      if (!payload) return undefined;
      if (this.name === 'RefreshToken' && typeof payload.consumed === 'number') {
        // Within the grace window a just-rotated token is honoured exactly once more (it rotates
        // again); the first consumption time is kept, so the window never slides. A second
        // replay keeps `consumed`, and oidc-provider's reuse detection revokes the family.
        const consumedMs = payload.consumed * 1000;
        if (now() - consumedMs <= refreshGraceSeconds * 1000 && await claimGraceReuse(id, consumedMs)) delete payload.consumed;
      }
      return payload as AdapterPayload;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await models.findByUserCode(this.name, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await models.findByUid(this.name, uid)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      await models.consume(this.name, id, now());
    }

    async destroy(id: string): Promise<void> {
      await models.destroy(this.name, id);
      if (this.name === 'Client') clientCache.delete(id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await models.revokeByGrantId(grantId);
    }
  };
}
