import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { readBody } from '../../src/gateway/read-body.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

/** The body itself, for tests of how it is read. */
const asIs = (body: Buffer): Buffer => body;

/** A real server: each request's handler is given by the test. */
describe('request body read (RFC 9110 §8.6 Content-Length, §15.5.14 413 Content Too Large)', () => {
  let server: Server;
  let port: number;
  let handler: (req: IncomingMessage) => Promise<string>;
  before(async () => {
    server = createServer((req, res) => {
      handler(req).then(
        (text) => res.end(text),
        (err: unknown) => res.writeHead(err instanceof GatewayError ? err.status : 500).end(err instanceof GatewayError ? err.code : String(err)),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    // A request stream that never ended must not hold the test file open.
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  /** Sends the head and the body parts, `gapMs` apart, on one connection. */
  function send(parts: string[], headers: Record<string, string>, gapMs = 0): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      const write = (i: number) => {
        if (i === parts.length) return req.end();
        req.write(parts[i]);
        setTimeout(() => write(i + 1), gapMs);
      };
      write(0);
    });
  }

  it('a body still arriving is read as it comes, chunks joined in order; an empty body is empty', async () => {
    handler = async (req) => (await readBody(req, 1000, asIs)).toString();
    assert.deepEqual(await send(['{"a":', '1,', '"b":2}'], { 'transfer-encoding': 'chunked' }, 30), { status: 200, text: '{"a":1,"b":2}' });
    assert.deepEqual(await send([], { 'content-length': '0' }), { status: 200, text: '' });
  });

  it('a body that arrived with its head is taken whole, without listeners, its chunks joined, its stream ended; the connection goes on to the next request', { timeout: 10_000 }, async () => {
    const taken: string[] = [];
    const whole = (req: IncomingMessage) => (req.listenerCount('data') === 0 ? 'whole' : 'arriving');
    // Every request's stream still ends, as one read to its end does ('end', then 'close'): the
    // answer is sent only then, so a stream left open would leave the test waiting.
    const ended = (req: IncomingMessage) => new Promise<void>((resolve) => (req.readableEnded ? resolve() : req.once('end', resolve))).then(() => new Promise((r) => (req.destroyed ? r(undefined) : req.once('close', r))));
    handler = async (req) => {
      let text: string;
      if (req.url === '/later') {
        // After a turn of the microtask queue (as after an await): the body is here, and it is handed over as it is.
        await null;
        const body = readBody(req, 1000, asIs);
        taken.push(body instanceof Promise ? 'promise' : whole(req));
        text = (await body).toString();
      } else {
        // Within the request event itself: the parser has not pushed this packet's body yet, it has after one microtask.
        const body = await readBody(req, 1000, asIs);
        taken.push(whole(req));
        text = body.toString();
      }
      await ended(req);
      return text;
    };
    // Four requests written in one packet on one connection: three with Content-Length (one read
    // later, one empty), then one chunked (three chunks), whole only once the parser has reported
    // its end (on Node 20 and 22 in a later turn: it is then read as it comes).
    const first = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"c":3}';
    const later = 'POST /later HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{"d":4}';
    const empty = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
    const chunked = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"a":\r\n2\r\n1,\r\n6\r\n"b":2}\r\n0\r\n\r\n';
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('utf8').on('data', (c: string) => (reply += c));
    socket.write(first + later + empty + chunked);
    await new Promise((r) => socket.once('close', r));
    const bodies = reply.split('\r\n\r\n').slice(1).map((part) => part.split('HTTP/1.1')[0]);
    assert.deepEqual(bodies, ['{"c":3}', '{"d":4}', '', '{"a":1,"b":2}'], reply);
    assert.deepEqual(taken.slice(0, 3), ['whole', 'whole', 'whole'], 'the bodies of declared length were whole when read');
  });

  it('what the body is handed to gets it once, and what it throws is the answer: taken at once, a turn later, or arriving in parts', async () => {
    let calls = 0;
    const ways: string[] = [];
    const parse = (body: Buffer) => {
      calls++;
      if (body.toString() === 'bad') throw new GatewayError('parse_error', 'Parse error');
      return `parsed ${body.toString()}`;
    };
    handler = async (req) => {
      if (req.headers['x-later'] === undefined) return readBody(req, 1000, parse);
      // A turn later the body is whole: it is handed over at once, and what `use` throws is thrown, not a rejection.
      await null;
      let read: string | Promise<string>;
      try {
        read = readBody(req, 1000, parse);
      } catch (err) {
        ways.push('thrown');
        throw err;
      }
      ways.push(read instanceof Promise ? 'promise' : 'at once');
      return read;
    };
    assert.deepEqual(await send(['ok'], { 'content-length': '2' }), { status: 200, text: 'parsed ok' });
    assert.deepEqual(await send(['bad'], { 'content-length': '3' }), { status: 400, text: 'parse_error' });
    assert.deepEqual(await send(['b', 'a', 'd'], { 'transfer-encoding': 'chunked' }, 30), { status: 400, text: 'parse_error' });
    assert.deepEqual(await send(['o', 'k'], { 'transfer-encoding': 'chunked' }, 30), { status: 200, text: 'parsed ok' });
    assert.deepEqual(await send(['ok'], { 'content-length': '2', 'x-later': '1' }), { status: 200, text: 'parsed ok' });
    assert.deepEqual(await send(['bad'], { 'content-length': '3', 'x-later': '1' }), { status: 400, text: 'parse_error' });
    assert.deepEqual(ways, ['at once', 'thrown']);
    assert.equal(calls, 6);
  });

  it('413 past the limit: declared, already buffered, or counted while arriving', async () => {
    handler = async (req) => {
      await new Promise((r) => setImmediate(r));
      return (await readBody(req, 10, asIs)).toString();
    };
    assert.equal((await send(['x'.repeat(11)], { 'content-length': '11' })).status, 413, 'declared');
    assert.equal((await send(['x'.repeat(11)], { 'transfer-encoding': 'chunked' })).status, 413, 'buffered, no length declared');
    handler = async (req) => (await readBody(req, 10, asIs)).toString();
    assert.equal((await send(['x'.repeat(6), 'x'.repeat(6)], { 'transfer-encoding': 'chunked' }, 30)).status, 413, 'while arriving');
  });
});
