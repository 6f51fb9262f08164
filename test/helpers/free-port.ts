/**
 * A port for a child process to listen on, chosen by the test before the child starts.
 *
 * The kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by
 * default) is where every `listen(0)` and every outgoing connection's source port comes from. A
 * port taken from it with `listen(0)` and released is free again for all of those in the second
 * or two before the child binds it: with two test files running at once, another test's server
 * or connection could take it. The child then failed to bind, and the test talked to whatever held
 * the port (another test's warden or nginx). So the port is chosen below that range, where nothing
 * is handed out on its own. It is also checked free by binding it, which skips ports another
 * test's child holds.
 *
 * A port is also reserved for as long as the test process that chose it runs (a file named after
 * it in the system's temp folder, holding that process's ID): a server a test stops and starts
 * again on its port (an outage test's Redis, a killed instance) leaves it free meanwhile, and
 * another test file's `freePort` must not choose it then.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../../src/client/file-lock.ts';

const LOWEST = 20_000;

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > LOWEST + 1000 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// One folder per user: another user's would not be writable.
const RESERVATIONS = join(tmpdir(), `mcp-warden-test-ports-${process.getuid?.() ?? 'user'}`);
const reserved = new Set<string>();
const fileOf = (port: number) => join(RESERVATIONS, String(port));
process.once('exit', () => {
  for (const file of reserved) {
    try { unlinkSync(file); } catch { /* gone already */ }
  }
});

/** The process holding a reservation file; undefined when it names none that runs. */
function holderOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reserves `port` for this process; false when another running process holds it.
 * The file appears with its content in one step (written aside, then hard-linked into place, which
 * fails if the name exists), so no process ever reads a reservation half written. A stale one (its
 * process ended without removing it: killed) is renamed aside before it is judged, so of two
 * processes taking it over at once only one moves it, and the other finds the port taken.
 */
export function reservePort(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = fileOf(port);
  const mine = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(mine, String(process.pid));
  try {
    for (let tries = 0; tries < 2; tries++) {
      try {
        linkSync(mine, file);
        reserved.add(file);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (holderOf(file) !== undefined) return false;
        const aside = `${mine}.stale`;
        try { renameSync(file, aside); } catch { return false; }
        // Between our read and the rename another process may have taken it over: put theirs back.
        if (holderOf(aside) !== undefined) {
          try { linkSync(aside, file); } catch { /* taken again meanwhile */ }
          unlinkSync(aside);
          return false;
        }
        unlinkSync(aside);
      }
    }
    return false;
  } finally {
    unlinkSync(mine);
  }
}

function release(port: number): void {
  const file = fileOf(port);
  reserved.delete(file);
  try { unlinkSync(file); } catch { /* gone already */ }
}

/** A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range, reserved for this process. */
export async function freePort(): Promise<number> {
  const highest = ephemeralStart() - 1;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1));
    if (!reservePort(port)) continue;
    if (await canBind(port)) return port;
    release(port);
  }
  throw new Error(`no free port between ${LOWEST} and ${highest}`);
}
