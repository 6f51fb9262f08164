import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/load.ts';
import { endAtCredentialExpiry } from '../../src/downstream/session-expiry.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import type { Caller } from '../../src/kernel/caller.ts';

const base = (downstream: unknown) => ({
  publicUrl: 'http://localhost:8080',
  servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'node' } }, downstream }],
});

describe('downstream configuration', () => {
  it('accepts one credential mode per server, with an identity assertion beside it', () => {
    const config = parseConfig(base({ perUserSecret: { env: 'TOKEN', key: { file: '/run/key' } }, identityAssertion: {} }));
    const d = config.servers[0]!.downstream!;
    assert.equal(d.perUserSecret!.key.env, 'WARDEN_SECRETS_KEY');
    assert.equal(d.perUserSecret!.key.file, '/run/key');
    assert.equal(d.identityAssertion!.header, 'X-Warden-Identity');
  });

  it('refuses two modes at once, half an external token endpoint, or no downstream API, naming the key', () => {
    assert.throws(() => parseConfig(base({ static: { env: { A: 'b' } }, perUserSecret: { env: 'T' } })), (err: unknown) => err instanceof ConfigError && /servers\.0\.downstream.*choose one of tokenExchange, perUserSecret or static/s.test((err as Error).message));
    assert.throws(() => parseConfig(base({ tokenExchange: { audience: 'https://api', tokenEndpoint: 'https://kc/token' } })), /tokenEndpoint, clientId and clientSecret together/);
    assert.throws(() => parseConfig(base({ tokenExchange: { env: 'T' } })), /name the downstream API with audience or resource/);
    assert.throws(() => parseConfig(base({ perUserSecret: { env: 'NOT-A-NAME' } })), /environment variable name/);
    assert.throws(() => parseConfig(base({ tokenExchange: { audience: 'a', passthrough: true } })), /unknown key "passthrough"/);
  });

  it('embedded tokenExchange needs at least one audience; the gateway client defaults to mcp-warden-gateway', () => {
    const ok = parseConfig({ ...base(undefined), authorizationServer: { embedded: { tokenExchange: { audiences: [{ audience: 'https://api' }] } } } });
    const as = ok.authorizationServer as { embedded: { tokenExchange: { gatewayClient: { clientId: string }; audiences: Array<{ accessTokenTtlSeconds: number }> } } };
    assert.equal(as.embedded.tokenExchange.gatewayClient.clientId, 'mcp-warden-gateway');
    assert.equal(as.embedded.tokenExchange.audiences[0]!.accessTokenTtlSeconds, 300);
    assert.throws(() => parseConfig({ ...base(undefined), authorizationServer: { embedded: { tokenExchange: { audiences: [] } } } }), /at least one downstream API/);
    assert.throws(() => parseConfig({ ...base(undefined), authorizationServer: { embedded: { tokenExchange: { gatewayClient: { clientSecret: 'short' }, audiences: [{ audience: 'a' }] } } } }), /at least 32 characters/);
  });
});

describe('stdio session expiry', () => {
  const caller = { subject: 'alice' } as Caller;
  const server = parseConfig(base(undefined)).servers[0]!;

  it('MCP transports §Session Management: the session ends when the child\'s exchanged token expires', async () => {
    const at = Date.now() / 1000 + 0.05;
    const downstream = { envFor: async () => ({}), headersFor: async () => ({}), credentialsExpireAt: () => at } satisfies DownstreamCredentials;
    // The timer is unref'd (it must not keep a gateway alive); hold the loop open while waiting.
    const keepAlive = setTimeout(() => {}, 5000);
    const ended = await new Promise<string>((resolve) => endAtCredentialExpiry(downstream, caller, server, resolve));
    clearTimeout(keepAlive);
    assert.equal(ended, 'downstream credential expired');
    assert.ok(Date.now() >= at * 1000 - 5);
  });

  it('credentials without expiry never end the session; cancelling stops the timer', async () => {
    let ended = false;
    const never = endAtCredentialExpiry({ envFor: async () => ({}), headersFor: async () => ({}) }, caller, server, () => (ended = true));
    never();
    const cancel = endAtCredentialExpiry({ envFor: async () => ({}), headersFor: async () => ({}), credentialsExpireAt: () => Date.now() / 1000 + 0.02 }, caller, server, () => (ended = true));
    cancel();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(ended, false);
  });
});
