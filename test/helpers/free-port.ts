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
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

const RESERVATIONS = join(tmpdir(), 'mcp-warden-test-ports');
const reserved = new Set<string>();
process.once('exit', () => {
  for (const file of reserved) {
    try { unlinkSync(file); } catch { /* gone already */ }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserves `port` for this process; false when a running process holds it. */
export function reservePort(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = join(RESERVATIONS, String(port));
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      reserved.add(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8'));
      // Left by a process that ended without cleaning up (killed): take it over.
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) return false;
      try { unlinkSync(file); } catch { /* another process took it over first */ }
    }
  }
  return false;
}

function release(port: number): void {
  const file = join(RESERVATIONS, String(port));
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
