/**
 * mcp-warden as a library: start the whole thing, or compose the gateway yourself.
 */
export { startWarden, type StartOptions, type Warden, type EmbeddedAuthorizationServer } from './app.ts';
export { parseConfig, loadConfigFile, substituteEnv, ConfigError } from './config/load.ts';
export { buildDemoConfig } from './config/demo.ts';
export type { Config, ServerConfig } from './config/schema.ts';
export { createGateway, type Gateway, type GatewayOptions } from './gateway/index.ts';
export { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from './gateway/token-verifier.ts';
export { GatewayError, type GatewayErrorCode } from './gateway/errors.ts';
export { renderBearerChallenge, quotedString } from './gateway/challenge.ts';
export { buildProtectedResourceMetadata } from './gateway/protected-resource-metadata.ts';
export { canonicalResourceUri, protectedResourceMetadataUrl } from './kernel/resource-uri.ts';
export type { Caller } from './kernel/caller.ts';
export { createLogger, silentLogger } from './log.ts';
