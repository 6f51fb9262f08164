/**
 * A cross-process lock on one file, so several `connect` processes refresh a token once
 * (the refresh token may rotate: OAuth 2.1 §4.3.1, and a second refresh with the old one fails).
 * Creating the lock is atomic (link(2) of a complete temp file, EEXIST when held); a lock whose
 * holder died (pid gone) or that has not been kept fresh for `staleMs` is broken, and only that
 * lock (it is identified by its inode).
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { ClientError } from './errors.ts';

export interface LockOptions {
  /** How long to wait for the lock before failing with `lock_timeout`. */
  timeoutMs?: number;
  /** A lock file older than this is considered abandoned. */
  staleMs?: number;
}

export interface WaitOptions<T> extends LockOptions {
  /**
   * Polled while another process holds the lock: a value ends the wait without taking the lock
   * (the holder already produced what we wanted, e.g. a refreshed token).
   */
  whileWaiting?: () => Promise<T | undefined>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether process `pid` runs (kill(2) with signal 0; EPERM: it runs as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

/**
 * Which lock a lock file is: its inode and its content (holder pid and creation time in ms). An
 * inode alone is not enough, as a freed inode number is soon reused by the next file created.
 */
export interface LockIdentity {
  ino: number;
  text: string;
}

/**
 * The lock now at `path` (identity and when it was last kept fresh), or undefined when there is
 * none. Content and times are read through one file descriptor, so they are of one lock, never a
 * mix of an old lock's pid and a new one's times.
 */
async function lockAt(path: string): Promise<(LockIdentity & { mtimeMs: number }) | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const [info, text] = await Promise.all([handle.stat(), handle.readFile('utf8')]);
    return { ino: info.ino, text, mtimeMs: info.mtimeMs };
  } finally {
    await handle.close();
  }
}

const same = (a: LockIdentity | undefined, b: LockIdentity) => a !== undefined && a.ino === b.ino && a.text === b.text;

/**
 * Creates the lock with its content in one step: the content goes to a private temp file that is
 * then hard-linked to `lockPath` (link(2) fails with EEXIST like O_EXCL). A lock is therefore never
 * seen empty or half-written. Returns the identity of this holder's lock.
 */
async function tryCreate(lockPath: string): Promise<LockIdentity | undefined> {
  const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const text = `${process.pid} ${Date.now()} ${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, lockPath);
    return { ino: (await stat(tmp)).ino, text };
  } catch (err) {
    if (errno(err) === 'EEXIST') return undefined;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The lock at `lockPath` if that very lock is abandoned: its holder's process is gone, or it has
 * not been kept fresh for `staleMs`. Undefined when it is held, or was released meanwhile (retry).
 */
async function staleLock(lockPath: string, staleMs: number): Promise<LockIdentity | undefined> {
  const lock = await lockAt(lockPath);
  if (!lock) return undefined;
  const pid = Number.parseInt(lock.text.split(' ')[0] ?? '', 10);
  const dead = Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid);
  return dead || Date.now() - lock.mtimeMs > staleMs ? { ino: lock.ino, text: lock.text } : undefined;
}

/**
 * Removes the abandoned lock `ino`, and only it. The lock at `lockPath` may have changed since it
 * was judged (its holder released it and a live process took a new one): it is first moved aside
 * atomically, and a lock that turns out to be another put back. Without this, a waiter that read
 * a finished holder's pid, then saw that process exit, deleted the next holder's fresh lock and
 * two processes wrote the token file at once (a lost update, seen on a loaded CI runner).
 */
export async function breakStaleLock(lockPath: string, stale: LockIdentity): Promise<void> {
  const aside = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    throw err;
  }
  try {
    if (same(await lockAt(aside), stale)) return;
    // A live lock: put it back unless someone has already taken a new one in this instant.
    await link(aside, lockPath).catch((err: unknown) => {
      if (errno(err) !== 'EEXIST') throw err;
    });
  } finally {
    await rm(aside, { force: true });
  }
}

/** Releases our own lock: a lock that is no longer ours (broken as stale) is left to its holder. */
async function release(lockPath: string, own: LockIdentity): Promise<void> {
  if (same(await lockAt(lockPath), own)) await rm(lockPath, { force: true });
}

/** Runs `fn` while holding `lockPath`; the lock is released even if `fn` throws. */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: WaitOptions<T> = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const staleMs = options.staleMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  let own: LockIdentity | undefined;
  for (;;) {
    own = await tryCreate(lockPath);
    if (own !== undefined) break;
    const stale = await staleLock(lockPath, staleMs);
    if (stale !== undefined) {
      await breakStaleLock(lockPath, stale);
      continue;
    }
    if (Date.now() > deadline) throw new ClientError('lock_timeout', `another mcp-warden process holds ${lockPath} (a sign-in or refresh in progress); finish or stop it, then try again`);
    const done = await options.whileWaiting?.();
    if (done !== undefined) return done;
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
  // A holder that takes long (a browser sign-in) keeps its lock fresh, so only a dead one goes stale.
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(50, Math.floor(staleMs / 3)));
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await release(lockPath, own);
  }
}
