/**
 * An MCP SDK client over Streamable HTTP whose every request goes through `WardenClient.fetch`
 * (bearer token on every request, 401 and step-up handled there).
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { WardenClient } from './session.ts';

export const CLIENT_INFO = { name: 'mcp-warden', version: '0.1.0' } as const;

/** Connects (initialize handshake included) and returns the SDK client; close it when done. */
export async function connectClient(
  warden: WardenClient,
  options: { info?: { name: string; version: string }; versionNegotiation?: 'legacy' | 'auto' } = {},
): Promise<Client> {
  const client = new Client(options.info ?? CLIENT_INFO, { capabilities: {}, versionNegotiation: { mode: options.versionNegotiation ?? 'legacy' } });
  const transport = new StreamableHTTPClientTransport(new URL(warden.serverUrl), { fetch: warden.fetch });
  await client.connect(transport);
  return client;
}
