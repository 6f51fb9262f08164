/**
 * The contract between the gateway and downstream credentials: what a caller's
 * upstream traffic carries. Never the caller's own token.
 */
import type { Caller } from '../kernel/caller.ts';
import type { ServerConfig } from '../config/schema.ts';

export interface DownstreamCredentials {
  /** Environment variables for this caller's stdio child of `server`, added to the configured env. */
  envFor(caller: Caller, server: ServerConfig): Promise<Record<string, string>>;
  /** Headers for this caller's requests to the HTTP upstream of `server`. */
  headersFor(caller: Caller, server: ServerConfig): Promise<Record<string, string>>;
  /**
   * When the credentials `envFor` just gave this caller's child of `server` stop working (seconds
   * since the epoch), or undefined if they do not expire. A child cannot be given a new
   * environment, so the gateway ends the session then and the client re-initializes with a fresh
   * exchange (docs/downstream.md, "Expiry during a long stdio session").
   */
  credentialsExpireAt?(caller: Caller, server: ServerConfig): number | undefined;
}

/** No downstream identity configured: the upstream gets only its configured env and headers. */
export const noDownstreamCredentials: DownstreamCredentials = {
  envFor: async () => ({}),
  headersFor: async () => ({}),
};
