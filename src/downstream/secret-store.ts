/**
 * Per-user downstream secrets, encrypted at rest (AES-256-GCM, secret-box.ts) over the
 * SealedSecretStore contract (src/storage/downstream-store.ts): the backend keeps sealed bytes
 * and each server's key check value; nothing it holds is a plaintext secret or the key.
 */
import type { SealedSecretStore, StoredSecretInfo } from '../storage/downstream-store.ts';
import { SecretsKeyError } from './errors.ts';
import { openSecret, sealSecret } from './secret-box.ts';
import { isKeyCheckValue, keyCheckValue } from './secrets-key.ts';

export type { StoredSecretInfo } from '../storage/downstream-store.ts';

/** The secrets of one server, opened with its key. */
export interface ServerSecrets {
  set(user: string, value: string): Promise<void>;
  get(user: string): Promise<string | undefined>;
  remove(user: string): Promise<boolean>;
  list(): Promise<StoredSecretInfo[]>;
}

/** Lists stored secrets (server and user only) without needing the key. */
export function listStoredSecrets(store: SealedSecretStore, server?: string): Promise<StoredSecretInfo[]> {
  return store.list(server);
}

/** When `user`'s secret for `server` was last set, without needing the key; undefined when none is stored. */
export async function storedSecretInfo(store: SealedSecretStore, server: string, user: string): Promise<StoredSecretInfo | undefined> {
  return (await store.list(server)).find((s) => s.user === user);
}

/**
 * Opens `server`'s secrets with `key`. The first use records the key's check value; every later
 * use must present the same key, else a `SecretsKeyError` stops start-up (or the CLI) right away.
 */
export async function openServerSecrets(store: SealedSecretStore, server: string, key: Buffer, now: () => number = Date.now): Promise<ServerSecrets> {
  const stored = await store.keyCheckValue(server, keyCheckValue(key), now());
  if (!isKeyCheckValue(key, stored)) {
    throw new SecretsKeyError(`the secrets key does not match the one server "${server}"'s stored secrets were encrypted with. Use the original key (WARDEN_SECRETS_KEY or the key file); a new key makes the stored secrets unreadable`);
  }
  return {
    async set(user, value) {
      await store.put(server, user, sealSecret(key, server, user, value), now());
    },
    async get(user) {
      const sealed = await store.get(server, user);
      if (!sealed) return undefined;
      try {
        return openSecret(key, server, user, sealed);
      } catch {
        // The key checked out, so the row itself was altered or moved: refuse it, never guess.
        throw new SecretsKeyError(`the stored secret of user "${user}" for server "${server}" fails authentication (altered or copied from another user); set it again`);
      }
    },
    remove: (user) => store.remove(server, user),
    list: () => store.list(server),
  };
}
