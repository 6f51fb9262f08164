/**
 * An MCP SDK client over Streamable HTTP whose every request goes through `WardenClient.fetch`
 * (bearer token on every request, 401 and step-up handled there).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { WardenClient } from './session.ts';

export const CLIENT_INFO = { name: 'mcp-warden', version: '0.1.0' } as const;

/**
 * An SDK Client whose `close()` first ends the MCP session with HTTP DELETE. MCP 2025-11-25
 * transports §Session Management: a client that no longer needs a session SHOULD send DELETE, so
 * the gateway can end it (and its stdio upstream) now rather than at its idle timeout.
 */
class SessionEndingClient extends Client {
  constructor(
    info: { name: string; version: string },
    options: ConstructorParameters<typeof Client>[1],
    private readonly http: StreamableHTTPClientTransport,
  ) {
    super(info, options);
  }

  override async close(): Promise<void> {
    // Best effort: a server that is gone, or answers 405 (no client-ended sessions), ends nothing.
    await this.http.terminateSession().catch(() => undefined);
    await super.close();
  }
}

/**
 * Connects (initialize handshake included) and returns the SDK client; `close()` it when done,
 * which also ends the session. A failed handshake ends the session it may have opened.
 */
export async function connectClient(
  warden: WardenClient,
  options: { info?: { name: string; version: string }; versionNegotiation?: 'legacy' | 'auto' } = {},
): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(warden.serverUrl), { fetch: warden.fetch });
  const client = new SessionEndingClient(options.info ?? CLIENT_INFO, { capabilities: {}, versionNegotiation: { mode: options.versionNegotiation ?? 'legacy' } }, transport);
  try {
    await client.connect(transport);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  return client;
}
