/**
 * How features outside the core authorization server (RFC 8693 token exchange, the account
 * page's first-party client) plug into it without the core importing them.
 */
import type Provider from 'oidc-provider';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../storage/store.ts';
import type { ResourceInfo } from './resources.ts';
import type { RevocationList } from './revocation.ts';

/** What an extension receives besides the provider (see `extensions`). */
export interface ExtensionContext {
  config: Config;
  issuer: string;
  store: Store;
  logger: Logger;
  resolveResource: (uri: string) => ResourceInfo | undefined;
  /** Revoked grants and access tokens (a revoked subject_token must not be exchanged). */
  revocations: RevocationList;
}

/**
 * Called once after the provider is
 * built, before it serves a request. Register grant types here with
 * `provider.registerGrantType(...)`; add resources (downstream audiences) with `extraResources`.
 */
export type AuthorizationServerExtension = (provider: Provider, ctx: ExtensionContext) => void | Promise<void>;
