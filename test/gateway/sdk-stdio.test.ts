import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { everythingStdio, startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { TINY_SERVER } from './fixtures/raw.ts';

describe('SDK clients through the gateway to server-everything over stdio', () => {
  let t: TestWarden;
  let token: string;
  before(async () => {
    t = await startTestWarden({ servers: [{ name: 'everything', path: '/mcp', upstream: { stdio: everythingStdio() }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'] }] });
    token = await t.issuer.mint({ aud: t.endpoint, scope: 'mcp:read' });
  });
  after(async () => t.close());

  it('MCP 2025-11-25: @modelcontextprotocol/client 2.x lists and calls tools with a bearer token', async () => {
    const client = new Client({ name: 'v2', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(t.endpoint), { authProvider: { token: async () => token } });
    await client.connect(transport);
    const tools = await client.listTools();
    assert.ok(tools.tools.some((tool) => tool.name === 'echo'));
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
    assert.match(JSON.stringify(result.content), /hello through the gateway/);
    assert.equal(t.warden.gateway.endpoints.get('/mcp')!.sessionCount, 1);
    await transport.terminateSession();
    await client.close();
    assert.equal(t.warden.gateway.endpoints.get('/mcp')!.sessionCount, 0);
  });

  it('@modelcontextprotocol/sdk 1.x calls tools and receives progress on the request stream', async () => {
    const client = new ClientV1({ name: 'v1', version: '1.0.0' });
    const transport = new TransportV1(new URL(t.endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    assert.ok(progress.length >= 1, 'progress notifications arrive through the gateway');
    assert.match(JSON.stringify(result.content), /ompleted/);
    await transport.terminateSession();
    await client.close();
  });
});

describe('older protocol revisions through the gateway, with the official SDK clients', () => {
  let t: TestWarden;
  before(async () => {
    t = await startTestWarden({
      servers: ['2025-06-18', '2025-03-26'].map((v) => ({
        name: `r${v.replace(/-/g, '')}`,
        path: `/mcp/${v}`,
        upstream: { stdio: { ...TINY_SERVER, env: { TINY_PROTOCOL_VERSION: v } } },
      })),
    });
  });
  after(async () => t.close());

  for (const version of ['2025-06-18', '2025-03-26']) {
    it(`MCP lifecycle §Version Negotiation: a ${version} session negotiated by the upstream works for the 2.x and 1.x clients`, async () => {
      const endpoint = `${t.warden.url}/mcp/${version}`;
      const token = await t.issuer.mint({ aud: endpoint });
      const v2 = new Client({ name: 'v2', version: '1.0.0' });
      const v2t = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => token } });
      await v2.connect(v2t);
      assert.deepEqual((await v2.callTool({ name: 'echo', arguments: { message: `v2 ${version}` } })).content, [{ type: 'text', text: `v2 ${version}` }]);
      await v2t.terminateSession();
      await v2.close();
      const v1 = new ClientV1({ name: 'v1', version: '1.0.0' });
      const v1t = new TransportV1(new URL(endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
      await v1.connect(v1t);
      assert.equal(v1t.protocolVersion, version, 'the client now sends MCP-Protocol-Version ' + version);
      assert.deepEqual((await v1.callTool({ name: 'echo', arguments: { message: `v1 ${version}` } })).content, [{ type: 'text', text: `v1 ${version}` }]);
      await v1t.terminateSession();
      await v1.close();
    });
  }
});
