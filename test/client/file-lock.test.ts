import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { breakStaleLock, withFileLock } from '../../src/client/file-lock.ts';

describe('file lock: only the abandoned lock is ever removed', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'warden-lock-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a stale verdict about a finished holder never removes the next holder\'s fresh lock (lost-update race)', async () => {
    const lock = join(root, 'race.lock');
    // Judged stale: a lock of a process that is gone.
    writeFileSync(lock, `99999999 ${Date.now()} old`);
    const judged = { ino: statSync(lock).ino, text: readFileSync(lock, 'utf8') };
    // Meanwhile it was released and a live process took the lock anew (possibly on the same inode).
    rmSync(lock);
    const fresh = `${process.ppid} ${Date.now()} new`;
    writeFileSync(lock, fresh);
    await breakStaleLock(lock, judged);
    assert.equal(readFileSync(lock, 'utf8'), fresh, 'the live lock is still there');
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('race.lock.')), [], 'nothing left aside');
    rmSync(lock);
  });

  it('the judged lock itself is removed', async () => {
    const lock = join(root, 'dead.lock');
    writeFileSync(lock, `99999999 ${Date.now()} old`);
    await breakStaleLock(lock, { ino: statSync(lock).ino, text: readFileSync(lock, 'utf8') });
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('dead.lock')), []);
  });

  it('a holder whose lock was taken from it does not release the new holder\'s lock', async () => {
    const lock = join(root, 'taken.lock');
    const other = `${process.ppid} ${Date.now()} other`;
    await withFileLock(lock, async () => {
      rmSync(lock);
      writeFileSync(lock, other);
    });
    assert.equal(readFileSync(lock, 'utf8'), other);
    rmSync(lock);
  });

  it('a lock file is never seen empty: it appears with its holder\'s pid', async () => {
    const lock = join(root, 'content.lock');
    const seen = await withFileLock(lock, async () => readFileSync(lock, 'utf8'));
    assert.match(seen, new RegExp(`^${process.pid} \\d+ [0-9a-f]{8}$`));
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('content.lock')), [], 'released, no temp file left');
  });
});
