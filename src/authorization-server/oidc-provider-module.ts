/**
 * oidc-provider, loaded only where a provider is built (the embedded authorization server).
 *
 * oidc-provider 9 prints "Unsupported runtime" to stderr as it is imported on any Node below
 * 22 LTS. We still support Node 20, so that one line is held back here; `start` says it once in
 * its own words instead (see `runtimeNote`), and admin commands that build a provider to
 * validate client metadata (`mcp-warden clients add`) print nothing extra.
 */
import type * as OidcProviderModule from 'oidc-provider';
import { RUNTIME_WARNING } from './oidc-provider-internals.ts';

async function importQuietly(): Promise<typeof OidcProviderModule> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes(RUNTIME_WARNING)) return;
    warn.apply(console, args);
  };
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = warn;
  }
}

const oidcProvider = await importQuietly();

export const OidcProvider = oidcProvider.default;
export const { errors, interactionPolicy } = oidcProvider;

/**
 * One line for `start` when the runtime is older than oidc-provider supports (Node 22 LTS
 * "Jod"); undefined on a supported runtime.
 */
export function runtimeNote(release: { lts?: string | undefined } = process.release): string | undefined {
  const lts = release.lts;
  if (lts && lts.charCodeAt(0) >= 'Jod'.charCodeAt(0)) return undefined;
  const why = lts ? `is past its end of life (${lts} LTS)` : 'is not an LTS release';
  return `Node.js ${process.versions.node} ${why}; oidc-provider (the embedded authorization server) supports Node.js 22 LTS and later`;
}
