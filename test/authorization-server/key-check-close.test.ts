/**
 * The embedded authorization server's periodic signing-key check (RFC 7517 §5: the JWKS follows
 * `keys rotate` on another instance) against a database that stops answering: closing the
 * authorization server does not wait for a check in flight (a shutdown would be held for a
 * statement's whole limit), and the check's failure once the storage lets go is not reported.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import type { KeyStore } from '../../src/storage/store.ts';
import { capturingLogger } from '../helpers/capturing-logger.ts';
import { startEmbeddedAs } from '../helpers/embedded-as.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('the signing-key check and close', () => {
  it('close does not wait for a key check the database never answers, and its failure then is not logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-key-check-'));
    const db = openDatabase(join(dir, 'keys.db'));
    const store = createSqliteStore(db);
    let frozen = false;
    let fail: ((err: Error) => void) | undefined;
    const keys: KeyStore = {
      add: (k) => store.keys.add(k),
      list: (use) => (frozen ? new Promise((_, reject) => { fail = reject; }) : store.keys.list(use)),
      retire: (kid, at) => store.keys.retire(kid, at),
    };
    const { logger, lines } = capturingLogger();
    const t = await startEmbeddedAs({ embedded: { signingKeyCheckSeconds: 1 }, options: { store: { ...store, keys }, logger } });
    try {
      frozen = true;
      await waitFor(() => fail !== undefined, 'the key check to be in flight', { timeoutMs: 3_000, intervalMs: 5 });
      const closed = await Promise.race([t.as.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 1_000))]);
      assert.equal(closed, 'closed');
      // The storage closing lets go of the connection: the read fails, reported as nothing.
      fail!(new Error('Connection terminated'));
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(lines.filter((l) => String(l.msg).includes('signing key check failed')), []);
    } finally {
      // Whatever happened, the read ends (as the storage closing would end it), so nothing waits for ever.
      fail?.(new Error('Connection terminated'));
      await t.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
