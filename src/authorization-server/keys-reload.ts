/**
 * Live key rotation: hands a running oidc-provider a new signing key set without a restart.
 *
 * oidc-provider 9 takes `jwks` once, at construction, and has no public API to change it. Two
 * routes were weighed: re-creating the provider on the same adapter (public API only, but every
 * extension, the client registry and the interaction handler hold the old instance and would be
 * rebuilt, with grant types registered again mid-flight), or running oidc-provider's own keystore
 * initialisation again on the same instance. We take the second: it is the code path the
 * constructor runs (the same key checks, the same `kid` rules), it swaps the keystore and the
 * published JWKS in one assignment each, and every reader (JWT access-token format, ID tokens,
 * the jwks endpoint) looks them up per request. The module is not in the package's exports, so it
 * is loaded by file path (oidc-provider-internals.ts, with every other such reach) and the
 * result is checked: an oidc-provider upgrade that moves it fails loudly at the first reload
 * (logged; the keys then take effect at the next start, as before) and in our tests, never
 * silently.
 */
import type Provider from 'oidc-provider';
import type { JWK } from 'jose';
import { loadKeystoreInternals as loadInternals } from './oidc-provider-internals.ts';

/** The `kid`s the provider publishes at its jwks endpoint, in order. */
export async function publishedKids(provider: Provider): Promise<string[]> {
  const { instance } = await loadInternals();
  const keys = instance(provider)?.jwks?.keys;
  if (!Array.isArray(keys)) throw new Error('this oidc-provider version keeps its JWKS elsewhere: live key rotation is unavailable');
  return keys.map((k) => String(k.kid));
}

/**
 * Replaces the provider's signing keys with `keys` (private JWKs, newest first: the first ES256
 * key signs from now on; the others stay published so tokens they signed keep verifying).
 * @throws when the provider did not take the new set (an incompatible oidc-provider version)
 * @see https://www.rfc-editor.org/rfc/rfc7517#section-5 (a JWK Set may hold several keys)
 */
export async function replaceProviderKeys(provider: Provider, keys: JWK[]): Promise<void> {
  const { initialize } = await loadInternals();
  initialize.call(provider, { keys });
  const expected = keys.map((k) => String(k.kid));
  const actual = await publishedKids(provider);
  if (actual.join(' ') !== expected.join(' ')) {
    throw new Error(`oidc-provider publishes ${actual.join(', ')} after a key reload, not ${expected.join(', ')}: live key rotation is unavailable`);
  }
}
