/**
 * Every failure the client commands report, said so a person can act on it: which URL, what went
 * wrong, what to do next. No response bodies (an HTML error page or raw JSON), no SDK wording, no
 * stack (main.ts prints one only with WARDEN_DEBUG). "The server said no" (an OAuth error code)
 * keeps its RFC code visible; "the server could not be reached" and "this is not an MCP endpoint"
 * are told apart from it.
 */
import { ProtocolError, SdkError, SdkHttpError } from '@modelcontextprotocol/client';
import { ClientError, HttpStatusError, UnexpectedContentError } from './errors.ts';

/** Network error codes (Node's and undici's) in words. */
const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing is listening there',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'the host name could not be resolved (DNS)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_SOCKET: 'the connection was closed unexpectedly',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate chain is not trusted',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is for another host name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified',
};

/** The URL as shown to a person: origin and path, never a query (it may carry codes or state). */
export function displayUrl(input: string | URL | Request): string {
  try {
    const url = new URL(input instanceof Request ? input.url : String(input));
    return `${url.origin}${url.pathname}`;
  } catch {
    return String(input);
  }
}

/**
 * A fetch that never reached a server (undici's `TypeError: fetch failed` with a coded cause) as
 * an `unreachable` error naming the URL; any other error (an abort, a ClientError) is undefined.
 */
export function networkFailure(input: string | URL | Request, err: unknown): ClientError | undefined {
  if (!(err instanceof TypeError) || !/fetch failed/i.test(err.message)) return undefined;
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const why = (code && NETWORK_CAUSES[code]) ?? (typeof cause?.message === 'string' ? cause.message : 'no answer');
  return new ClientError('unreachable', `cannot reach ${displayUrl(input)}: ${why}${code ? ` (${code})` : ''}. Check that the server is running and the URL is right.`, { cause: err });
}

/** One line of an error message, without a response body the SDK may have appended. */
export function summarize(message: string): string {
  const line = message.split('\n', 1)[0]!;
  // "…(HTTP 501): <!DOCTYPE html>…" or "…: {"error":…": keep what precedes the body.
  const body = line.search(/:\s*[<{[]/);
  const short = body >= 0 ? line.slice(0, body) : line;
  return short.length > 240 ? `${short.slice(0, 240)}…` : short;
}

/**
 * The failure of a client command against `serverUrl` as a ClientError whose message names the
 * URL, the cause and the next step. ClientErrors pass through (they are written that way).
 */
export function explainFailure(err: unknown, serverUrl: string): unknown {
  if (err instanceof ClientError) return err;
  const network = networkFailure(serverUrl, err);
  if (network) return network;
  // The SDK's transport (the full client) and the bridge's own (streamable-http.ts) fail alike.
  if (err instanceof SdkHttpError || err instanceof HttpStatusError) {
    const status = err.status;
    if (status === 404 || status === 405 || status === 501) {
      return new ClientError('not_mcp_endpoint', `${serverUrl} is not an MCP endpoint: it answered an MCP request with HTTP ${status}. Check the URL, including its path (mcp-warden serves MCP at the paths in its config, e.g. /mcp).`, { cause: err });
    }
    if (status === 401) {
      return new ClientError('token_rejected', `${serverUrl} refused the access token (HTTP 401) even after a new sign-in. Run mcp-warden login ${serverUrl}; if it persists, the server may not trust this authorization server (ask its administrator).`, { cause: err });
    }
    return new ClientError('server_error', `${serverUrl} answered HTTP ${status}${err.message ? ` (${summarize(err.message).replace(/^Error POSTing to endpoint\s*/, '') || 'no detail'})` : ''}. Try again later; if it persists, ask the server's administrator.`, { cause: err });
  }
  if (err instanceof UnexpectedContentError || (err instanceof SdkError && /Unexpected content type/i.test(err.message))) {
    return new ClientError('not_mcp_endpoint', `${serverUrl} is not an MCP endpoint: it answered with ${summarize(err.message).replace(/^Unexpected content type:?\s*/i, '') || 'an unexpected content type'} instead of JSON or an event stream. Check the URL.`, { cause: err });
  }
  if (err instanceof ProtocolError) {
    // A JSON-RPC error from the MCP server (e.g. unknown tool): its own words, one line.
    return new ClientError('server_error', `${serverUrl} answered: ${summarize(err.message)}`, { cause: err });
  }
  if (err instanceof Error) return new ClientError('protocol_error', `${serverUrl}: ${summarize(err.message)}`, { cause: err });
  return err;
}
