/**
 * Pre-registered clients (`mcp-warden clients add|list|remove`, demo seeding). They live in the
 * same Client table as DCR clients, validated by oidc-provider's own client schema, with the
 * secret hashed at rest (adapter.ts) and returned once.
 */
import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Store } from '../storage/store.ts';
import { generateClientSecret } from './client-secret.ts';
import { clientAdapter } from './oidc-provider-internals.ts';
import { revocationListOf } from './revocation.ts';

export interface PreRegisteredClient {
  clientId?: string;
  clientName: string;
  /** public: no secret, PKCE only; confidential: client_secret_basic, or private_key_jwt with `jwks`. */
  type: 'public' | 'confidential';
  redirectUris?: string[];
  grantTypes?: string[];
  applicationType?: 'web' | 'native';
  /** Scopes the client may request (client credentials: what it gets). */
  scope?: string;
  /** Roles carried by client-credentials tokens (`roles` claim). */
  roles?: string[];
  /** For private_key_jwt (RFC 7523 §2.2): the client's public keys. */
  jwks?: { keys: Array<Record<string, unknown>> };
  /** For private_key_jwt: where the client publishes its public keys (fetched under the SSRF guard). */
  jwksUri?: string;
  /** Use this secret instead of a random one (demo: WARDEN_DEMO_CLIENT_SECRET). */
  clientSecret?: string;
}

export interface ClientSummary {
  clientId: string;
  clientName: string;
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  redirectUris: string[];
  origin: 'pre-registered' | 'dynamic';
}

/** A pre-registered client could not be added (message names the metadata at fault). */
export class ClientRegistryError extends Error {
  override name = 'ClientRegistryError';
}

/** Add, list and remove pre-registered clients. @see RFC 7591 §2 (client metadata) */
export function createClientRegistry(provider: Provider, store: Store) {
  const revocations = revocationListOf(provider);
  return {
    /** Registers a client; the returned secret is the only time it is shown. */
    async add(spec: PreRegisteredClient): Promise<{ clientId: string; clientSecret?: string }> {
      const clientId = spec.clientId ?? `mcpw_${randomBytes(12).toString('base64url')}`;
      if (await store.models.find('Client', clientId)) throw new ClientRegistryError(`client "${clientId}" already exists`);
      const grantTypes = spec.grantTypes ?? (spec.redirectUris?.length ? ['authorization_code', 'refresh_token'] : ['client_credentials']);
      const usesJwt = spec.type === 'confidential' && (spec.jwks !== undefined || spec.jwksUri !== undefined);
      const clientSecret = spec.type === 'confidential' && !usesJwt ? spec.clientSecret ?? generateClientSecret() : undefined;
      const metadata: Record<string, unknown> = {
        client_id: clientId,
        client_name: spec.clientName,
        application_type: spec.applicationType ?? 'web',
        redirect_uris: spec.redirectUris ?? [],
        grant_types: grantTypes,
        response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
        token_endpoint_auth_method: spec.type === 'public' ? 'none' : usesJwt ? 'private_key_jwt' : 'client_secret_basic',
        warden_preregistered: true,
        ...(clientSecret ? { client_secret: clientSecret } : {}),
        ...(spec.jwks ? { jwks: spec.jwks } : {}),
        ...(spec.jwksUri ? { jwks_uri: spec.jwksUri } : {}),
        ...(spec.scope ? { scope: spec.scope } : {}),
        ...(spec.roles ? { warden_roles: spec.roles } : {}),
      };
      try {
        await provider.Client.validate(metadata as never);
      } catch (err) {
        const e = err as { error_description?: string; message: string };
        throw new ClientRegistryError(`invalid client: ${e.error_description ?? e.message}`);
      }
      // The adapter hashes client_secret before it is written.
      await clientAdapter(provider).upsert(clientId, metadata, 0);
      return clientSecret ? { clientId, clientSecret } : { clientId };
    },

    async list(): Promise<ClientSummary[]> {
      return (await store.models.list('Client')).map(({ id, payload: p }) => ({
        clientId: id,
        clientName: typeof p.client_name === 'string' ? p.client_name : '',
        tokenEndpointAuthMethod: String(p.token_endpoint_auth_method ?? 'client_secret_basic'),
        grantTypes: (p.grant_types as string[] | undefined) ?? [],
        redirectUris: (p.redirect_uris as string[] | undefined) ?? [],
        origin: p.warden_preregistered === true ? 'pre-registered' : 'dynamic',
      }));
    },

    /** Removes the client and every grant, code and token issued to it. */
    async remove(clientId: string): Promise<boolean> {
      if (!(await store.models.find('Client', clientId))) return false;
      // RFC 7009 §2.1: its access tokens too, those of a grant and its client-credentials ones.
      await revocations.revokeClient(clientId);
      for (const { payload } of await store.models.list('Grant')) {
        if (payload.clientId === clientId && typeof payload.jti === 'string') {
          await revocations.revokeGrant(payload.jti);
          await store.models.revokeByGrantId(payload.jti);
        }
      }
      for (const { id, payload } of await store.models.list('ClientCredentials')) {
        if (payload.clientId === clientId) await store.models.destroy('ClientCredentials', id);
      }
      // Through the adapter, so its client metadata cache forgets the client at once.
      await clientAdapter(provider).destroy(clientId);
      return true;
    },
  };
}

export type ClientRegistry = ReturnType<typeof createClientRegistry>;
