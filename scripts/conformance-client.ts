/**
 * Conformance adapter: one run of our client (src/client) against one conformance scenario.
 * Each run gets a fresh token-store folder. The "browser" here follows the authorization
 * redirect with plain HTTP into our real loopback listener, so state/iss checks run as in a login.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WardenClient, connectClient, idJagAssertion, type WardenClientOptions } from '../src/client/index.ts';

const CIMD_URL = 'https://conformance-test.local/client-metadata.json';

interface Context {
  valid_jwt?: string;
  idp_client_id?: string;
  idp_id_token?: string;
  idp_token_endpoint?: string;
  client_id?: string;
  client_secret?: string;
  private_key_pem?: string;
  signing_algorithm?: string;
}

async function followAuthorization(url: URL): Promise<void> {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  await res.body?.cancel();
  if (!location) throw new Error(`the authorization endpoint answered ${res.status} without a redirect`);
  // Deliver the authorization response to our loopback listener, exactly as a browser would.
  const callback = await fetch(new URL(location, url), { redirect: 'manual' });
  await callback.body?.cancel();
}

async function main(): Promise<number> {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl) throw new Error('usage: conformance-client <server-url>');
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as Context;
  const home = mkdtempSync(join(tmpdir(), 'mcp-warden-conformance-'));
  const options: WardenClientOptions = {
    serverUrl,
    home,
    clientName: 'mcp-warden-conformance',
    clientMetadataUrl: CIMD_URL,
    openUrl: followAuthorization,
    onNotice: (m) => process.stderr.write(`${m}\n`),
  };
  // DPoP is opt-in (`--dpop`); the DPoP scenarios are where a user would turn it on.
  if (scenario.startsWith('auth/dpop')) options.dpop = true;
  if ((scenario === 'auth/enterprise-managed-authorization' || scenario === 'auth/cross-app-access-complete-flow') && context.idp_token_endpoint) {
    const idToken = context.idp_id_token ?? '';
    options.grant = 'jwt_bearer';
    options.clientId = context.client_id;
    if (context.client_secret) options.clientSecret = context.client_secret;
    options.assertion = idJagAssertion({ idpTokenEndpoint: context.idp_token_endpoint, idpClientId: context.idp_client_id ?? '', idToken: async () => idToken });
  } else if (scenario.startsWith('auth/wif') && context.valid_jwt) {
    const jwt = context.valid_jwt;
    options.grant = 'jwt_bearer';
    options.clientId = context.client_id;
    options.assertion = async () => jwt;
  } else if (scenario.startsWith('auth/client-credentials')) {
    options.grant = 'client_credentials';
    options.clientId = context.client_id;
    if (context.private_key_pem) options.privateKeyJwt = { privateKey: context.private_key_pem, alg: context.signing_algorithm ?? 'ES256' };
    else options.clientSecret = context.client_secret;
  } else if (context.client_id) {
    options.clientId = context.client_id;
    if (context.client_secret) options.clientSecret = context.client_secret;
  }
  try {
    const client = new WardenClient(options);
    const mcp = await connectClient(client, { versionNegotiation: process.env.CONFORMANCE_VERSION_NEGOTIATION === 'legacy' ? 'legacy' : 'auto' });
    try {
      const { tools } = await mcp.listTools();
      const tool = tools.find((t) => t.name === 'test-tool') ?? tools[0];
      if (tool) await mcp.callTool({ name: tool.name, arguments: {} });
    } finally {
      await mcp.close();
    }
    return 0;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`conformance-client: ${err.message}\n`);
    process.exit(1);
  },
);
