/**
 * A plain HTTP load balancer for tests that run several instances in one process: each request
 * goes to the next instance in turn (no stickiness, as a round-robin balancer with no session
 * affinity), and it counts where each went. `pin` may send a request to a chosen instance instead
 * (a browser callback that must reach the instance a test is watching).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobin {
  server: Server;
  port: number;
  /** Requests sent to each port. */
  hits: Map<number, number>;
}

export function roundRobin(targets: () => number[], pin?: (req: IncomingMessage) => number | undefined): Promise<RoundRobin> {
  const hits = new Map<number, number>();
  let next = 0;
  const server = createServer((req, res) => {
    const ports = targets();
    const port = pin?.(req) ?? ports[next++ % ports.length]!;
    hits.set(port, (hits.get(port) ?? 0) + 1);
    const upstream = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    // An instance gone mid-answer: 502 if nothing was sent yet, else the connection is cut, as
    // a real balancer does; a client gone: the request to the instance is dropped too.
    upstream.on('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, hits })));
}
