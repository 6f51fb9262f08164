/**
 * The instance hop (src/cluster/instance-hop.ts) when the client goes away: real HTTP servers on
 * loopback, one the client talks to (it hops), one standing for the owner instance. No Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forwardToInstance, type HopOutcome } from '../../src/cluster/instance-hop.ts';
import { waitFor } from '../helpers/wait-for.ts';

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

describe('instance hop: a client that went away', { timeout: 5_000 }, () => {
  /** The owner: counts the hops it receives and the ones that closed. */
  let owner: Server;
  let ownerUrl: string;
  let received = 0;
  let closed = 0;
  /** The instance the client reaches: what each request does is set by the test. */
  let front: Server;
  let frontUrl: string;
  let handle: (req: IncomingMessage, res: ServerResponse) => void = () => {};

  before(async () => {
    owner = createServer((req, res) => {
      received++;
      res.on('close', () => closed++);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    ownerUrl = await listen(owner);
    front = createServer((req, res) => handle(req, res));
    frontUrl = await listen(front);
  });

  after(() => {
    owner.closeAllConnections();
    owner.close();
    front.closeAllConnections();
    front.close();
  });

  it('RFC 9112 §9.6 (tear-down): a request whose client left before the hop is not sent on, and the hop settles as aborted (not "owner unreachable")', async () => {
    let seen = false;
    const outcome = new Promise<HopOutcome>((resolve) => {
      handle = (req, res) => {
        seen = true;
        // The hop is attempted only once the client's connection is gone (as after a slow directory lookup).
        res.once('close', () => void forwardToInstance(req, res, ownerUrl, 'v1.x.0.y').then(resolve));
      };
    });
    const client = httpRequest(`${frontUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    client.on('error', () => {});
    client.write('{"jsonrpc":');
    // The client leaves only once the front has the request: destroyed before that, the handler
    // never runs and the outcome never settles.
    await waitFor(() => seen, 'the front to receive the request');
    client.destroy();
    assert.equal(await outcome, 'aborted');
    assert.equal(received, 0, 'the owner received nothing');
  });

  it('RFC 9112 §9.6 (tear-down): a client leaving while the owner has not answered closes the hop too, and settles as aborted', async () => {
    const before = { received, closed };
    const outcome = new Promise<HopOutcome>((resolve) => {
      handle = (req, res) => void forwardToInstance(req, res, ownerUrl, 'v1.x.0.y').then(resolve);
    });
    const client = httpRequest(`${frontUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    client.on('error', () => {});
    client.write('{"jsonrpc":');
    await waitFor(() => received > before.received, 'the owner received the hop');
    client.destroy();
    assert.equal(await outcome, 'aborted', 'not unreachable: the owner is alive');
    await waitFor(() => closed > before.closed, 'the owner saw the hop close');
  });
});
