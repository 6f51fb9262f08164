/**
 * First-party confidential clients the server provisions itself at start (the gateway's
 * token-exchange client, the account page's OIDC client): their secret comes from config, env or
 * a generated value, so the stored registration is replaced whenever it no longer matches.
 */
import type Provider from 'oidc-provider';
import type { Store } from '../storage/store.ts';
import { createClientRegistry } from './clients.ts';
import { verifyClientSecret } from './client-secret.ts';

export interface FirstPartyClient {
  clientId: string;
  clientName: string;
  clientSecret: string;
  grantTypes: string[];
  redirectUris: string[];
}

/**
 * Registers the confidential (client_secret_basic) client, or re-registers it when the stored one
 * has another secret, redirect URIs or grant types; re-registering revokes what was issued to it.
 * Returns whether it (re-)registered. @see RFC 7591 §2
 */
export async function ensureFirstPartyClient(provider: Provider, store: Store, client: FirstPartyClient): Promise<boolean> {
  const stored = (await store.models.find('Client', client.clientId)) as { client_secret?: string; redirect_uris?: string[]; grant_types?: string[] } | undefined;
  const current = stored !== undefined
    && verifyClientSecret(stored.client_secret, client.clientSecret)
    && JSON.stringify(stored.redirect_uris ?? []) === JSON.stringify(client.redirectUris)
    && JSON.stringify(stored.grant_types) === JSON.stringify(client.grantTypes);
  if (current) return false;
  const registry = createClientRegistry(provider, store);
  await registry.remove(client.clientId);
  await registry.add({ ...client, type: 'confidential', applicationType: 'web' });
  return true;
}
