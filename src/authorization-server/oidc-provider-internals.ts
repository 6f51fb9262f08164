/**
 * Every place mcp-warden reaches past oidc-provider's documented API, in one module. An
 * oidc-provider upgrade is safe when test/authorization-server/oidc-provider-internals.test.ts
 * passes against it; docs/authorization-server.md has the upgrade checklist. The version is
 * pinned exactly in package.json for that reason.
 *
 * File-path imports (not in the package's `exports`):
 *   1. lib/helpers/client_id_metadata_document.js  resolveClientByMetadataDocument (CIMD for http://localhost ids)
 *   2. lib/helpers/initialize_keystore.js          the constructor's keystore set-up (live key rotation)
 *   3. lib/helpers/weak_cache.js                   the per-provider private state (the published JWKS)
 * Replaced behaviour:
 *   4. Client.prototype.compareClientSecret         our secrets are stored hashed
 *   5. Client.find                                  falls back to the CIMD resolver for http://localhost ids
 * Undocumented properties:
 *   6. Client.adapter                               the client store, for pre-registered clients
 *   7. req.originalUrl                              the mount path oidc-provider derives endpoint URLs from
 * Response rewrites (by RFC error code and route, never by English text):
 *   8. introspection / revocation answered `unsupported_token_type` for our JWT access tokens
 *   9. token: a grant type the client is not registered for is `invalid_request` there, RFC 6749 §5.2 `unauthorized_client`
 * Import-time output:
 *  10. the "Unsupported runtime" console warning on Node < 22 (oidc-provider-module.ts holds it back)
 * Behaviour our renderer builds on (index.ts, public API but worth re-checking on an upgrade):
 *  11. a route it does not serve falls through with status 404 and no body (we answer 404/405 JSON)
 *  12. its designed errors are `errors.OIDCProviderError`s; anything else reaches the `server_error` event
 *      as another class, and only those answers are re-rendered with our text and request id
 *  13. `extraClientMetadata.validator` runs after the metadata is copied and before the client schema reads it
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IncomingMessage } from 'node:http';
import type { JWK } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** The version every reach below was checked against (package.json pins it exactly). */
export const OIDC_PROVIDER_VERSION = '9.13.3';

/** The console warning oidc-provider prints as it is imported on a runtime it does not support. */
export const RUNTIME_WARNING = 'oidc-provider WARNING: Unsupported runtime';

const require = createRequire(import.meta.url);

/** oidc-provider's installed version (its package.json). */
export function installedOidcProviderVersion(): string {
  return (require('oidc-provider/package.json') as { version: string }).version;
}

function helper(file: string): Promise<Record<string, unknown>> {
  const lib = dirname(require.resolve('oidc-provider'));
  return import(pathToFileURL(join(lib, 'helpers', file)).href) as Promise<Record<string, unknown>>;
}

function fail(what: string): never {
  throw new Error(`oidc-provider ${installedOidcProviderVersion()} moved an internal mcp-warden uses (${what}); see the upgrade checklist in docs/authorization-server.md`);
}

export type ResolveByDocument = (provider: Provider, id: string) => Promise<unknown>;

let cimdResolver: Promise<ResolveByDocument> | undefined;

/** 1. oidc-provider's own CIMD resolver (fetch, size and cache rules, validation). */
export function loadCimdResolver(): Promise<ResolveByDocument> {
  cimdResolver ??= helper('client_id_metadata_document.js').then((mod) => {
    if (typeof mod.resolveClientByMetadataDocument !== 'function') fail('helpers/client_id_metadata_document.js resolveClientByMetadataDocument');
    return mod.resolveClientByMetadataDocument as ResolveByDocument;
  });
  return cimdResolver;
}

export type InitializeKeystore = (this: Provider, jwks: { keys: JWK[] }) => void;
export type ProviderState = (provider: Provider) => { jwks?: { keys: Array<{ kid?: string }> } } | undefined;

let keystore: Promise<{ initialize: InitializeKeystore; instance: ProviderState }> | undefined;

/** 2 and 3. The keystore initialisation the constructor runs, and the private state holding the JWKS. */
export function loadKeystoreInternals(): Promise<{ initialize: InitializeKeystore; instance: ProviderState }> {
  keystore ??= Promise.all([helper('initialize_keystore.js'), helper('weak_cache.js')]).then(([init, cache]) => {
    if (typeof init.default !== 'function') fail('helpers/initialize_keystore.js default export');
    if (typeof cache.default !== 'function') fail('helpers/weak_cache.js default export');
    return { initialize: init.default as InitializeKeystore, instance: cache.default as ProviderState };
  });
  return keystore;
}

interface ClientClass {
  prototype: { compareClientSecret?: unknown };
  find(id: string): Promise<unknown>;
  adapter?: { upsert(id: string, payload: unknown, expiresIn?: number): Promise<void>; destroy(id: string): Promise<void> };
}

const clientClass = (provider: Provider) => provider.Client as unknown as ClientClass;

/** 4. Client secrets are compared by `compare(stored, presented)` instead of oidc-provider's equality. */
export function replaceClientSecretComparison(provider: Provider, compare: (stored: string | undefined, presented: string) => boolean): void {
  const Client = clientClass(provider);
  if (typeof Client.prototype.compareClientSecret !== 'function') fail('Client.prototype.compareClientSecret');
  Client.prototype.compareClientSecret = function compareClientSecret(this: { clientSecret?: string }, presented: string) {
    return compare(this.clientSecret, presented);
  };
}

/** 5. `Client.find(id)` tries `fallback(id)` when the stored clients do not have `id`. */
export function addClientFallback(provider: Provider, fallback: (id: string) => Promise<unknown> | undefined): void {
  const Client = clientClass(provider);
  if (typeof Client.find !== 'function') fail('Client.find');
  const find = Client.find.bind(Client);
  Client.find = async (id: string) => {
    const found = await find(id);
    if (found || typeof id !== 'string') return found;
    return fallback(id);
  };
}

/** 5b. Adjusts every client oidc-provider loads (Client.find), after the lookup and any fallback. */
export function mapFoundClients(provider: Provider, map: (client: { scope?: string; metadata(): Record<string, unknown> }) => void): void {
  const Client = clientClass(provider);
  if (typeof Client.find !== 'function') fail('Client.find');
  const find = Client.find.bind(Client);
  Client.find = async (id: string) => {
    const client = await find(id) as { scope?: string; metadata(): Record<string, unknown> } | undefined;
    if (client) map(client);
    return client;
  };
}

/** 6. The adapter oidc-provider stores clients with (writes through it keep its cache coherent). */
export function clientAdapter(provider: Provider): NonNullable<ClientClass['adapter']> {
  const adapter = clientClass(provider).adapter;
  if (!adapter || typeof adapter.upsert !== 'function' || typeof adapter.destroy !== 'function') fail('Client.adapter');
  return adapter;
}

/** 7. oidc-provider derives its mount path, and so every endpoint URL, from `req.originalUrl`. */
export function setMountedUrl(req: IncomingMessage, originalUrl: string): void {
  (req as IncomingMessage & { originalUrl?: string }).originalUrl = originalUrl;
}

/** 8. Did oidc-provider answer an introspection or revocation request with unsupported_token_type? @see RFC 7009 §2.2.1 */
export function isUnsupportedTokenTypeAnswer(ctx: KoaContextWithOIDC): 'introspection' | 'revocation' | undefined {
  const route = ctx.oidc?.route;
  if ((route !== 'introspection' && route !== 'revocation') || ctx.status !== 400) return undefined;
  return (ctx.body as { error?: string } | undefined)?.error === 'unsupported_token_type' ? route : undefined;
}

/**
 * 9. RFC 6749 §5.2: "unauthorized_client: the authenticated client is not authorized to use this
 * authorization grant type". oidc-provider answers that case invalid_request; it is recognised
 * by its facts (token endpoint, an authenticated client not registered for the grant type it
 * sent), not by the library's English description, and renamed.
 */
export function renameGrantTypeRefusal(ctx: KoaContextWithOIDC): void {
  const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] | undefined;
  const body = ctx.body as { error?: string } | undefined;
  const grantType = (oidc?.params as Record<string, unknown> | undefined)?.grant_type;
  if (oidc?.route !== 'token' || ctx.status !== 400 || body?.error !== 'invalid_request' || typeof grantType !== 'string') return;
  const client = oidc.client;
  if (!client || client.grantTypeAllowed(grantType)) return;
  ctx.body = { error: 'unauthorized_client', error_description: `this client is not registered for the ${grantType} grant type` };
}
