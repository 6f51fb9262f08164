/**
 * A cross-process lock on one file, so several `connect` processes refresh a token once
 * (the refresh token may rotate: OAuth 2.1 §4.3.1, and a second refresh with the old one fails).
 * `open(path, 'wx')` is atomic on local filesystems; a lock whose holder died (pid gone) or that
 * is older than `staleMs` is broken.
 */
import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    const pid = Number.parseInt(text.split(' ')[0] ?? '', 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) return true;
    return Date.now() - info.mtimeMs > staleMs;
  } catch (err) {
    // Vanished between our open and read: not stale, just retry.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Runs `fn` while holding `lockPath`; the lock is released even if `fn` throws. */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: WaitOptions<T> = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const staleMs = options.staleMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid} ${Date.now()}`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isStale(lockPath, staleMs)) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new ClientError('lock_timeout', `another mcp-warden process holds ${lockPath}`);
      const done = await options.whileWaiting?.();
      if (done !== undefined) return done;
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
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
    await rm(lockPath, { force: true });
  }
}
