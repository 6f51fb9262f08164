/**
 * oidc-provider's storage adapter over the Store contract. One adapter instance per model name
 * (Session, Grant, AuthorizationCode, RefreshToken, Client, Interaction, …).
 *
 * Three policies live here because they are about what is stored:
 * - client secrets are stored as SHA-256 hashes, never in clear (see client-secret.ts);
 * - refresh-token rotation is deferred to one transaction per token request, and a retry of a
 *   rotated-out token is answered with the same successor (grants/refresh-rotation.ts); any
 *   other use of it is reported as consumed, and oidc-provider's reuse detection revokes the
 *   grant (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2);
 * - revoking a grant also revokes its access tokens, which are JWTs nobody stores (RFC 7009 §2.1,
 *   revocation.ts).
 */
import { LRUCache } from 'lru-cache';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ModelPayload, Store } from '../storage/store.ts';
import { hashClientSecret, isHashedClientSecret } from './client-secret.ts';
import { currentRotation, type RefreshRotation } from './grants/refresh-rotation.ts';
import type { RevocationList } from './revocation.ts';

export interface AdapterOptions {
  store: Store;
  now: () => number;
  rotation: RefreshRotation;
  revocations: RevocationList;
}

/** The adapter class oidc-provider instantiates with a model name. @see oidc-provider docs: adapter */
/** How long a client's metadata is served from memory; changes by another process (the CLI) show after this. */
const CLIENT_CACHE_MS = 5_000;

export function createAdapterClass({ store, now, rotation: rotations, revocations }: AdapterOptions): new (name: string) => Adapter {
  const models = store.models;
  // Clients are read on every token request and change rarely: a short, bounded cache.
  // Bounded, least recently used out (was: cleared whole at 1 000 entries).
  const clientCache = new LRUCache<string, { payload: ModelPayload | undefined; until: number }>({ max: 1000 });
  return class StoreAdapter implements Adapter {
    readonly name: string;
    constructor(name: string) { this.name = name; }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const rotation = this.name === 'RefreshToken' ? currentRotation() : undefined;
      if (rotation?.consumedAt !== undefined && rotation.presented !== id) {
        // The successor of a rotation: written with the old token's consumption, in one transaction.
        rotation.successor = { model: this.name, id, payload: payload as ModelPayload, expiresAt: expiresIn ? now() + expiresIn * 1000 : undefined };
        return;
      }
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
        clientCache.set(id, { payload: fresh, until: now() + CLIENT_CACHE_MS });
        return fresh as AdapterPayload | undefined;
      }
      const payload = await models.find(this.name, id);
      if (!payload) return undefined;
      const rotation = this.name === 'RefreshToken' ? currentRotation() : undefined;
      if (rotation && rotation.presented === undefined) {
        rotation.presented = id;
        if (payload.consumed !== undefined) {
          // A rotated-out token: a retry of a lost answer gets the same successor; anything else
          // stays consumed, which oidc-provider treats as reuse and revokes the grant.
          const successor = await rotations.replayableSuccessor(id);
          if (successor) {
            rotation.replaySuccessor = successor;
            delete payload.consumed;
          }
        }
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
      const rotation = this.name === 'RefreshToken' ? currentRotation() : undefined;
      if (rotation?.presented === id) {
        rotation.consumedAt = now();
        return;
      }
      await models.consume(this.name, id, now());
    }

    async destroy(id: string): Promise<void> {
      await models.destroy(this.name, id);
      if (this.name === 'Client') clientCache.delete(id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      // oidc-provider calls this once per model of the grant, AccessToken always among them: the
      // grant's JWT access tokens are refused from now on (code replay, refresh revocation or reuse).
      if (this.name === 'AccessToken') await revocations.revokeGrant(grantId);
      await models.revokeByGrantId(grantId);
    }
  };
}
