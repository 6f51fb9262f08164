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
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

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

/** A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  const highest = ephemeralStart() - 1;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port between ${LOWEST} and ${highest}`);
}
