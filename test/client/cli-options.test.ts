import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toClientOptions } from '../../src/client/cli-options.ts';
import { isClientError } from '../../src/client/errors.ts';
import { parseToolArguments } from '../../src/cli/commands/call.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-cli-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const io = { notice: () => undefined, printUrl: () => undefined };
const URL_ = 'https://mcp.example.com/mcp';

describe('client command options', () => {
  it('RFC 7523 §2.2: --private-key-jwt reads a PKCS#8 PEM (ES256 by default) or a JWK (its alg), and selects client credentials', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = join(dir, 'agent.pem');
    writeFileSync(pem, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const fromPem = toClientOptions(URL_, { 'client-id': 'agent-1', 'private-key-jwt': pem }, {}, io);
    assert.equal(fromPem.grant, 'client_credentials');
    assert.equal(fromPem.privateKeyJwt?.alg, 'ES256');
    assert.match(String(fromPem.privateKeyJwt?.privateKey), /BEGIN PRIVATE KEY/);

    const jwkFile = join(dir, 'agent.jwk.json');
    writeFileSync(jwkFile, JSON.stringify({ ...privateKey.export({ format: 'jwk' }), alg: 'ES256', kid: 'k1' }));
    const fromJwk = toClientOptions(URL_, { 'client-id': 'agent-1', 'private-key-jwt': jwkFile, 'signing-alg': 'ES256' }, {}, io);
    assert.equal((fromJwk.privateKeyJwt?.privateKey as { kid: string }).kid, 'k1');
  });

  it('a missing key file is a usage error naming it', () => {
    assert.throws(() => toClientOptions(URL_, { 'client-id': 'a', 'private-key-jwt': join(dir, 'nope.pem') }, {}, io), (err) => isClientError(err, 'usage') && /nope\.pem/.test(err.message));
  });

  it('the client secret may come from MCP_WARDEN_CLIENT_SECRET instead of argv', () => {
    const o = toClientOptions(URL_, { 'client-id': 'agent', 'client-credentials': true }, { MCP_WARDEN_CLIENT_SECRET: 's3cret' }, io);
    assert.equal(o.clientSecret, 's3cret');
    assert.equal(o.grant, 'client_credentials');
  });

  it('--no-resource, --client-metadata-url, --scope and MCP_WARDEN_REFRESH_SKEW_SECONDS reach the client options', () => {
    const o = toClientOptions(URL_, { 'no-resource': true, 'client-metadata-url': 'https://tools.example/client.json', scope: 'a b' }, { MCP_WARDEN_REFRESH_SKEW_SECONDS: '5' }, io);
    assert.equal(o.sendResource, false);
    assert.equal(o.clientMetadataUrl, 'https://tools.example/client.json');
    assert.equal(o.scope, 'a b');
    assert.equal(o.refreshSkewMs, 5000);
    assert.equal(o.grant, undefined, 'authorization code by default');
  });

  it('--no-browser prints the URL instead of opening a browser', async () => {
    const printed: string[] = [];
    const o = toClientOptions(URL_, { 'no-browser': true }, {}, { notice: () => undefined, printUrl: (u) => void printed.push(u.href) });
    await o.openUrl!(new URL('https://as.example/authorize?state=x'));
    assert.deepEqual(printed, ['https://as.example/authorize?state=x']);
  });

  it('tool arguments must be a JSON object', () => {
    assert.deepEqual(parseToolArguments(undefined), {});
    assert.deepEqual(parseToolArguments('{"id":"1"}'), { id: '1' });
    assert.throws(() => parseToolArguments('[1,2]'), /JSON object/);
    assert.throws(() => parseToolArguments('{'), /must be JSON/);
  });
});

describe('workload identity option', () => {
  it('RFC 7523 §2.1: --jwt-bearer-assertion selects the jwt-bearer grant and re-reads the file at each use', async () => {
    const file = join(dir, 'workload.jwt');
    writeFileSync(file, 'first.jwt.value\n');
    const o = toClientOptions(URL_, { 'client-id': 'workload', 'jwt-bearer-assertion': file }, {}, io);
    assert.equal(o.grant, 'jwt_bearer');
    assert.equal(await o.assertion!({ issuer: undefined, resource: undefined, scope: undefined }), 'first.jwt.value');
    writeFileSync(file, 'rotated.jwt.value');
    assert.equal(await o.assertion!({ issuer: undefined, resource: undefined, scope: undefined }), 'rotated.jwt.value');
    assert.throws(() => toClientOptions(URL_, { 'jwt-bearer-assertion': file }, {}, io), /needs --client-id/);
  });

  it('--token-store picks auto|keychain|file, MCP_WARDEN_TOKEN_STORE is the fallback, anything else is a usage error', () => {
    assert.equal(toClientOptions(URL_, {}, {}, io).tokenStore, undefined, 'unset: the library default (auto)');
    assert.equal(toClientOptions(URL_, {}, { MCP_WARDEN_TOKEN_STORE: 'file' }, io).tokenStore, 'file');
    assert.equal(toClientOptions(URL_, { 'token-store': 'keychain' }, { MCP_WARDEN_TOKEN_STORE: 'file' }, io).tokenStore, 'keychain', 'the flag wins');
    assert.throws(() => toClientOptions(URL_, { 'token-store': 'plaintext' }, {}, io), (err) => isClientError(err, 'usage') && /--token-store must be one of auto, keychain, file/.test(err.message));
    assert.throws(() => toClientOptions(URL_, {}, { MCP_WARDEN_TOKEN_STORE: 'KEYCHAIN' }, io), (err) => isClientError(err, 'usage') && /MCP_WARDEN_TOKEN_STORE/.test(err.message));
  });
});
