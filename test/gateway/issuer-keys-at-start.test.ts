/**
 * An external issuer's RFC 8414 metadata and JWKS, fetched as the gateway starts
 * (`TokenVerifier.warm`, src/gateway/token-verifier.ts) rather than by the first verification:
 * what that must not change (an issuer without a JWKS, a key published after start) and how a
 * fetch still in flight ends when the gateway closes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PUBLIC_URL = 'http://127.0.0.1:9';
const CLOSE_DURING_FETCH = fileURLToPath(new URL('./fixtures/close-during-issuer-fetch.ts', import.meta.url));
const AUDIENCE = `${PUBLIC_URL}/mcp`;

function configFor(issuer: string, external: Record<string, unknown> = {}) {
  return parseConfig({ publicUrl: PUBLIC_URL, authorizationServer: { external: { issuer, ...external } }, servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }] });
}

/** An issuer of the test's own: `/.well-known/oauth-authorization-server` answers `metadata(issuer)`, `/jwks` never answers. */
async function handMadeIssuer(metadata: ((issuer: string) => object) | 'silent'): Promise<{ issuer: string; server: Server }> {
  const server = createServer((req, res) => {
    if (metadata !== 'silent' && req.url === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(metadata(issuer)));
    }
    // Anything else: accepted and never answered, as a black-holed IdP.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { issuer, server };
}

describe('an external issuer\'s metadata and keys fetched at start (RFC 8414 §3, RFC 7517)', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.closeAllConnections();
    for (const s of servers) s.close();
  });

  it('RFC 8414 §2: an issuer without jwks_uri whose tokens are introspected is not reported unavailable; without introspection it is', async () => {
    const { issuer, server } = await handMadeIssuer((iss) => ({ issuer: iss, introspection_endpoint: `${iss}/introspect`, response_types_supported: ['code'] }));
    servers.push(server);
    await createTokenVerifier({ config: configFor(issuer, { introspection: { clientId: 'gateway', clientSecret: 'secret' } }) }).warm();
    await assert.rejects(createTokenVerifier({ config: configFor(issuer) }).warm(), /no jwks_uri/);
  });

  it('RFC 7517: a key the issuer published after start verifies its first token; a later one waits for the re-fetch cooldown, as before', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const config = configFor(issuer.issuer);
      const server = config.servers[0]!;
      const verifier = createTokenVerifier({ config, jwksCooldownMs: 60_000 });
      await verifier.warm();
      assert.equal(issuer.jwksCalls, 1);
      // Published between start and the first request: the set fetched at start does not have it.
      await issuer.rotate();
      const first = await issuer.mint({ aud: AUDIENCE, sub: 'bob' });
      assert.equal((await verifier.verify(first, server)).subject, 'bob');
      assert.equal(issuer.jwksCalls, 2, 'fetched once more, as the first verification would have');
      // From then on jose's cooldown holds: an unknown kid within it is refused without a fetch.
      await issuer.rotate();
      const second = await issuer.mint({ aud: AUDIENCE, sub: 'carol' });
      await assert.rejects(verifier.verify(second, server), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token');
      assert.equal(issuer.jwksCalls, 2);
    } finally {
      await issuer.close();
    }
  });

  it('a gateway closed while its fetch at start is still in flight lets go of the issuer at once: its process ends, not at the fetch\'s timeout', async () => {
    let requests = 0;
    const { issuer, server } = await handMadeIssuer('silent');
    servers.push(server);
    server.on('request', () => { requests += 1; });
    const child = spawn(process.execPath, ['--import', 'tsx', CLOSE_DURING_FETCH, issuer], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    await waitFor(() => out.includes('started') && requests > 0, 'the fetch at start to reach the issuer', { timeoutMs: 30_000 });
    child.stdin.end('close\n');
    await waitFor(() => out.includes('closed'), 'the warden to close');
    const t0 = performance.now();
    // Without the abort, the discovery request would hold the process for its 10 s timeout, twice.
    const code = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 5000))]);
    if (code === 'still running') child.kill('SIGKILL');
    assert.equal(code, 0, code === 'still running' ? `still running ${Math.round(performance.now() - t0)} ms after the warden closed` : `exit code ${code}`);
  });

  for (const stage of ['metadata', 'JWKS'] as const) {
    it(`closing ends a fetch of the ${stage} still in flight at once, not at its 10 s timeout`, async () => {
      const { issuer, server } = await handMadeIssuer(stage === 'metadata' ? 'silent' : (iss) => ({ issuer: iss, jwks_uri: `${iss}/jwks`, response_types_supported: ['code'] }));
      servers.push(server);
      const closing = new AbortController();
      const warm = createTokenVerifier({ config: configFor(issuer), signal: closing.signal }).warm();
      // Let the request reach the silent server first.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const t0 = performance.now();
      closing.abort();
      await assert.rejects(warm);
      assert.ok(performance.now() - t0 < 5000, `ended ${Math.round(performance.now() - t0)} ms after the abort`);
    });
  }
});
