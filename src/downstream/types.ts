/**
 * The contract between the gateway and downstream credentials (issue 5): what a caller's
 * upstream traffic carries. Never the caller's own token.
 */
import type { Caller } from '../gateway/caller.ts';
import type { ServerConfig } from '../config/schema.ts';

export interface DownstreamCredentials {
  /** Environment variables for this caller's stdio child of `server`, added to the configured env. */
  envFor(caller: Caller, server: ServerConfig): Promise<Record<string, string>>;
  /** Headers for this caller's requests to the HTTP upstream of `server`. */
  headersFor(caller: Caller, server: ServerConfig): Promise<Record<string, string>>;
}

/** No downstream identity configured: the upstream gets only its configured env and headers. */
export const noDownstreamCredentials: DownstreamCredentials = {
  envFor: async () => ({}),
  headersFor: async () => ({}),
};
