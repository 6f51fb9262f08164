/**
 * `mcp-warden/client`: an OAuth 2.1 client for protected MCP servers, on top of the official SDK.
 * @see MCP 2025-11-25 Authorization; RFC 9728, RFC 8414, RFC 7636, RFC 8707, RFC 9207, RFC 8252
 */
export { WardenClient, type WardenClientOptions, type AuthorizeRequest } from './session.ts';
export { connectClient, CLIENT_INFO } from './connect.ts';
export { idJagAssertion } from './id-jag.ts';
export type { AssertionContext, GrantMode } from './provider.ts';
export { runStdioBridge, type BridgeOptions } from './bridge.ts';
export { createDeferredWarden, type DeferredWarden } from './deferred-warden.ts';
export type { BridgeAuthority } from './streamable-http.ts';
export { TokenStore, type ServerRecord, type StoredTokens, type TokenStorageOptions, type TokenStoreBackend } from './token-store.ts';
export { parseTokenStoreMode, type Keychain, type TokenStoreMode } from './keychain/types.ts';
export { ClientError, isClientError, type ClientErrorCode } from './errors.ts';
export { canonicalServerUri } from './canonical-uri.ts';
export { resolveClientHome } from './paths.ts';
export { startLoopbackReceiver, type LoopbackReceiver, type AuthorizationResponse } from './loopback.ts';
export { openInBrowser, assertSafeAuthorizationUrl } from './browser.ts';
export { withFileLock } from './file-lock.ts';
