/**
 * What the revocation check costs a verification the gateway already cached (the common case: a
 * session's second and later requests), before and after the list moved into memory.
 * Run: node --import tsx bench/revocation-check.ts [--json] [--ops 20000] [--rounds 5]
 *
 * Variants, each `TokenVerifier.verify` of one cached ES256 access token (RFC 9068):
 * - `none`: no revocation check (the floor).
 * - `memory`: the revocation list of src/authorization-server/revocation.ts, started, holding
 *   1 000 revocations of each kind (other ids), so its maps are not empty.
 * - `store-sqlite`, `store-postgres`: the check as it was before (up to four Store point lookups,
 *   token, grant, user, client, all missing), replicated here over the same table shape
 *   (oidc_models rows), on a SQLite file and on the local PostgreSQL (skipped if it is down).
 *
 * Method: every variant runs `--ops` verifications per round, in `--rounds` rounds whose order
 * rotates, so load on this shared machine hits all alike; reported: median µs per verification
 * over the rounds, and each variant's cost above `none`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from 'jose';
import { buildDemoConfig } from '../src/config/demo.ts';
import { createTokenVerifier, type TokenVerifier } from '../src/gateway/token-verifier.ts';
import { authorizationServerIssuer } from '../src/gateway/protected-resource-metadata.ts';
import { canonicalResourceUri } from '../src/kernel/resource-uri.ts';
import { createRevocationList, revocationHorizonMs } from '../src/authorization-server/revocation.ts';
import { createMemoryStore } from '../src/storage/memory/store.ts';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../src/storage/sqlite/store.ts';
import type { ModelStore } from '../src/storage/store.ts';
import { median } from './fixtures/median.ts';

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const OPS = opt('ops', 20_000);
const ROUNDS = opt('rounds', 5);

const config = buildDemoConfig({ PORT: '8080', WARDEN_PUBLIC_URL: 'http://127.0.0.1:8080', PATH: process.env.PATH });
const server = config.servers[0]!;
const { publicKey, privateKey } = await generateKeyPair('ES256');
const jwks: JSONWebKeySet = Object.freeze({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] });
const nowS = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ scope: 'notes:read', client_id: 'bench-client', grant_id: 'bench-grant', jti: 'bench-jti' })
  .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
  .setIssuer(authorizationServerIssuer(config)).setAudience(canonicalResourceUri(config, server)).setSubject('alice')
  .setIssuedAt(nowS).setExpirationTime(nowS + 3600).sign(privateKey);

const verifierWith = (isRevoked?: (claims: Readonly<Record<string, unknown>>) => boolean | Promise<boolean>): TokenVerifier =>
  createTokenVerifier({ config, publicJwks: async () => jwks, ...(isRevoked ? { isRevoked } : {}) });

/** The check before this change (revocation.ts at b238c1c): a bus-heard map miss, then a Store point lookup per kind. */
function storeLookups(models: ModelStore) {
  const heard = new Map<string, number>();
  const MODEL = { grant: 'RevokedGrant', token: 'RevokedAccessToken', subject: 'RevokedSubject', client: 'RevokedClient' } as const;
  const revokedAt = async (kind: keyof typeof MODEL, id: unknown): Promise<number | undefined> => {
    if (typeof id !== 'string' || id === '') return undefined;
    const local = heard.get(`${kind}\u0000${id}`);
    if (local !== undefined) return local;
    const row = await models.find(MODEL[kind], id);
    return row && typeof row.revokedAt === 'number' ? row.revokedAt : undefined;
  };
  return async (claims: Readonly<Record<string, unknown>>): Promise<boolean> => {
    if ((await revokedAt('token', claims.jti)) !== undefined) return true;
    if ((await revokedAt('grant', claims.grant_id)) !== undefined) return true;
    const iat = typeof claims.iat === 'number' ? claims.iat : 0;
    const before = (at: number | undefined) => at !== undefined && iat <= Math.floor(at / 1000);
    if (claims.sub !== claims.client_id && before(await revokedAt('subject', claims.sub))) return true;
    return before(await revokedAt('client', claims.client_id));
  };
}

const variants: Array<{ name: string; verifier: TokenVerifier }> = [{ name: 'none', verifier: verifierWith() }];

const list = createRevocationList({ records: createMemoryStore().revocations, now: Date.now, horizonMs: revocationHorizonMs(3600) });
await list.start();
for (let i = 0; i < 1000; i++) {
  await list.revokeGrant(`other-grant-${i}`);
  await list.revokeAccessToken(`other-jti-${i}`, Date.now() + 3_600_000);
  await list.revokeSubject(`other-user-${i}`);
  await list.revokeClient(`other-client-${i}`);
}
variants.push({ name: 'memory', verifier: verifierWith((claims) => list.isRevoked(claims)) });

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-revocation-'));
const db = openDatabase(join(dir, 'w.db'));
const sqliteModels = createSqliteStore(db).models;
for (let i = 0; i < 1000; i++) await sqliteModels.upsert('RevokedGrant', `other-grant-${i}`, { revokedAt: Date.now() }, Date.now() + 3_600_000);
variants.push({ name: 'store-sqlite', verifier: verifierWith(storeLookups(sqliteModels)) });

let closePg: (() => Promise<void>) | undefined;
try {
  const { openTestPostgres } = await import('../test/helpers/postgres.ts');
  const { createPostgresStore } = await import('../src/storage/postgres/store.ts');
  const pg = await openTestPostgres();
  closePg = () => pg.drop();
  const pgModels = (await createPostgresStore(pg)).models;
  variants.push({ name: 'store-postgres', verifier: verifierWith(storeLookups(pgModels)) });
} catch (err) {
  if (!json) console.log(`store-postgres skipped: ${(err as Error).message}`);
}

// Warm-up: the first verification does the signature; every later one is a cache hit.
for (const v of variants) for (let i = 0; i < 2000; i++) await v.verifier.verify(token, server);

const perOp: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(round + k) % variants.length]!;
    // The slow variants would take minutes at OPS: a tenth of them is as stable per op.
    const n = v.name === 'store-postgres' ? Math.max(1, Math.floor(OPS / 10)) : OPS;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await v.verifier.verify(token, server);
    perOp[v.name]!.push(Number(process.hrtime.bigint() - start) / 1e3 / n);
  }
}
const floor = median(perOp.none!);
const results = variants.map((v) => ({ variant: v.name, medianUsPerVerify: +median(perOp[v.name]!).toFixed(2), aboveNoneUs: +(median(perOp[v.name]!) - floor).toFixed(2) }));
if (json) console.log(JSON.stringify({ ops: OPS, rounds: ROUNDS, results }));
else {
  console.log(`cached verification, ${OPS} ops × ${ROUNDS} rounds (store-postgres: a tenth), median µs per verify`);
  for (const r of results) console.log(`${r.variant.padEnd(15)} ${String(r.medianUsPerVerify).padStart(9)} µs   (+${r.aboveNoneUs} µs over none)`);
}

await closePg?.();
db.close();
rmSync(dir, { recursive: true, force: true });
