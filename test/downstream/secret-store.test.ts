import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { openServerSecrets, listStoredSecrets } from '../../src/downstream/secret-store.ts';
import { loadSecretsKey } from '../../src/downstream/secrets-key.ts';
import { SecretsKeyError } from '../../src/downstream/errors.ts';
import { openSecret, sealSecret } from '../../src/downstream/secret-box.ts';

describe('per-user secrets at rest (AES-256-GCM)', () => {
  let dir: string;
  let db: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-secrets-'));
    db = openDatabase(join(dir, 'warden.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('NIST SP 800-38D: seals with a fresh 96-bit nonce and opens only with the same key, server and user (AAD)', () => {
    const key = randomBytes(32);
    const a = sealSecret(key, 'notes', 'alice', 'ghp_alice');
    const b = sealSecret(key, 'notes', 'alice', 'ghp_alice');
    assert.equal(a.nonce.length, 12);
    assert.equal(a.tag.length, 16);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.notDeepEqual(a.ciphertext, b.ciphertext);
    assert.equal(openSecret(key, 'notes', 'alice', a), 'ghp_alice');
    assert.throws(() => openSecret(key, 'notes', 'bob', a));
    assert.throws(() => openSecret(key, 'github', 'alice', a));
    assert.throws(() => openSecret(randomBytes(32), 'notes', 'alice', a));
  });

  it('stores ciphertext only, and each user reads back their own secret', async () => {
    const key = randomBytes(32);
    const stored = createSqliteDownstreamStorage(db).secrets;
    const store = await openServerSecrets(stored, 'notes', key);
    await store.set('alice', 'alice-token-123');
    await store.set('bob', 'bob-token-456');
    assert.equal(await store.get('alice'), 'alice-token-123');
    assert.equal(await store.get('bob'), 'bob-token-456');
    assert.equal(await store.get('carol'), undefined);
    const raw = db.prepare('SELECT * FROM downstream_secrets').all() as Array<Record<string, unknown>>;
    for (const row of raw) assert.ok(!JSON.stringify(row).includes('token-'), 'no plaintext in the table');
    assert.deepEqual((await listStoredSecrets(stored)).map((r) => [r.server, r.user]), [['notes', 'alice'], ['notes', 'bob']]);
    assert.equal(await store.remove('alice'), true);
    assert.equal(await store.remove('alice'), false);
  });

  it('a wrong key is refused when the store is opened (key check value), before any secret is read', async () => {
    const stored = createSqliteDownstreamStorage(db).secrets;
    await (await openServerSecrets(stored, 'notes', randomBytes(32))).set('alice', 'x');
    await assert.rejects(openServerSecrets(stored, 'notes', randomBytes(32)), (err: unknown) => err instanceof SecretsKeyError && /does not match/.test((err as Error).message));
  });

  it('a row moved to another user fails authentication instead of leaking', async () => {
    const key = randomBytes(32);
    const store = await openServerSecrets(createSqliteDownstreamStorage(db).secrets, 'notes', key);
    await store.set('alice', 'alice-secret');
    await store.set('bob', 'bob-secret');
    db.prepare("UPDATE downstream_secrets SET nonce = (SELECT nonce FROM downstream_secrets WHERE user = 'alice'), ciphertext = (SELECT ciphertext FROM downstream_secrets WHERE user = 'alice'), tag = (SELECT tag FROM downstream_secrets WHERE user = 'alice') WHERE user = 'bob'").run();
    await assert.rejects(store.get('bob'), SecretsKeyError);
  });

  it('the key comes from the env var or a key file; missing, non-base64 or short keys are clear errors', () => {
    const key = randomBytes(32).toString('base64');
    assert.equal(loadSecretsKey({ env: 'K' }, { K: key }).length, 32);
    assert.throws(() => loadSecretsKey({ env: 'K' }, {}), /secrets key is missing: set K/);
    assert.throws(() => loadSecretsKey({ env: 'K' }, { K: 'not base64!' }), /not base64/);
    assert.throws(() => loadSecretsKey({ env: 'K' }, { K: randomBytes(16).toString('base64') }), /16 bytes; AES-256-GCM needs exactly 32/);
    const file = join(dir, 'key');
    writeFileSync(file, `${key}\n`);
    assert.deepEqual(loadSecretsKey({ env: 'K', file }, {}), Buffer.from(key, 'base64'));
    assert.throws(() => loadSecretsKey({ env: 'K', file: join(dir, 'nope') }, {}), /cannot read the secrets key file/);
  });
});
