/**
 * Downstream identity benchmark (token exchange, identity assertions, per-user secrets). Run: node --import tsx bench/downstream.ts [--json]
 *
 * Goals: an HTTP upstream request's credentials from the cache (headersFor, exchanged token
 * cached) median ≤ 50 µs; a per-user secret (SQLite read + AES-256-GCM open) median ≤ 100 µs;
 * one RFC 8693 exchange round trip at the embedded grant over loopback HTTP median ≤ 20 ms.
 *
 * Method: real components (oidc-provider with the token-exchange grant, SQLite in a temp file,
 * undici over 127.0.0.1); each case warms up, then times samples; medians and p99 reported.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { createSqliteDownstreamStorage } from '../src/storage/sqlite/downstream-store.ts';
import { createDownstreamCredentials } from '../src/downstream/index.ts';
import { openServerSecrets } from '../src/downstream/secret-store.ts';
import { exchangeToken } from '../src/downstream/token-exchange-client.ts';
import type { Caller } from '../src/kernel/caller.ts';
import { DOWNSTREAM_API, GATEWAY, startTestAuthorizationServer } from '../test/downstream/fixtures.ts';

const json = process.argv.includes('--json');

async function measure(label: string, samples: number, batch: number, fn: () => Promise<unknown>): Promise<{ label: string; medianUs: number; p99Us: number }> {
  for (let i = 0; i < Math.min(samples, 50) * batch; i++) await fn();
  const perOp: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) await fn();
    perOp.push(Number(process.hrtime.bigint() - start) / 1000 / batch);
  }
  perOp.sort((a, b) => a - b);
  return { label, medianUs: perOp[Math.floor(samples / 2)]!, p99Us: perOp[Math.floor(samples * 0.99)]! };
}

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-downstream-'));
const as = await startTestAuthorizationServer({ audiences: [{ audience: DOWNSTREAM_API, scopes: ['notes:read'], accessTokenTtlSeconds: 3600 }] });
const db = openDatabase(join(dir, 'warden.db'));
try {
  const key = randomBytes(32);
  const config = parseConfig({
    publicUrl: 'http://localhost:8080',
    authorizationServer: { embedded: { issuer: as.issuer, tokenExchange: { gatewayClient: GATEWAY, audiences: [{ audience: DOWNSTREAM_API, scopes: ['notes:read'] }] } } },
    servers: [
      { name: 'api', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } }, downstream: { tokenExchange: { audience: DOWNSTREAM_API } } },
      { name: 'secrets', path: '/s', upstream: { stdio: { command: 'true' } }, downstream: { perUserSecret: { env: 'TOKEN' } } },
    ],
  });
  const storage = createSqliteDownstreamStorage(db);
  const secrets = await openServerSecrets(storage.secrets, 'secrets', key);
  for (let i = 0; i < 1000; i++) await secrets.set(`user${i}`, `secret-${i}-${randomBytes(16).toString('hex')}`);
  const d = await createDownstreamCredentials({ config, storage, logger: silentLogger, env: { WARDEN_SECRETS_KEY: key.toString('base64') }, embeddedTokenEndpoint: as.tokenEndpoint });
  const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { expiresIn: 3600 });
  const alice: Caller = { subject: 'alice', clientId: 'c', issuer: as.issuer, audience: 'x', scopes: ['notes:read'], roles: [], claims: {}, expiresAt: 0, accessToken: subject };
  let n = 0;
  const results = [
    await measure('headersFor, exchanged token cached', 300, 200, () => d.headersFor(alice, config.servers[0]!)),
    await measure('envFor, per-user secret (SQLite + AES-256-GCM)', 300, 100, () => d.envFor({ ...alice, subject: `user${n++ % 1000}` }, config.servers[1]!)),
    await measure('RFC 8693 exchange round trip (loopback HTTP, real oidc-provider)', 200, 1, () => exchangeToken({ tokenEndpoint: as.tokenEndpoint, clientId: GATEWAY.clientId, clientSecret: GATEWAY.clientSecret, subjectToken: subject, audience: DOWNSTREAM_API })),
  ];
  const goals = [50, 100, 20_000];
  const met = results.every((r, i) => r.medianUs <= goals[i]!);
  if (json) process.stdout.write(`${JSON.stringify({ results, goalsUs: goals, met })}\n`);
  else {
    for (const [i, r] of results.entries()) process.stdout.write(`${r.label.padEnd(68)} median ${r.medianUs.toFixed(1).padStart(9)} µs  p99 ${r.p99Us.toFixed(1).padStart(9)} µs  goal ≤ ${goals[i]} µs\n`);
    process.stdout.write(met ? 'all goals met\n' : 'GOAL MISSED\n');
  }
  process.exitCode = met ? 0 : 1;
} finally {
  db.close();
  await as.close();
  rmSync(dir, { recursive: true, force: true });
}
