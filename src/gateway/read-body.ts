/** Reads a request body up to a limit (413 beyond it, checked before and while reading). */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from './errors.ts';

/** An empty body taken whole (`read()` answers null when nothing is buffered). */
const EMPTY = Buffer.alloc(0);

/**
 * The body, taken whole when it has arrived, else read as it arrives, handed to `use`: its
 * result, or one promise of it when the body comes a turn later (a `then` on a promise of the body
 * would make a second one per request, on the path every POST takes). What `use` throws is
 * thrown, or rejects that promise. A small POST comes in the packet that carries its head; once
 * the microtask queue turns after the request event, Node's HTTP parser has pushed all of it into
 * the request's buffer, and it is taken with one `read()` instead of three listeners that would
 * wait for flowing mode to hand over what is already here.
 */
export function readBody<T>(req: IncomingMessage, limit: number, use: (body: Buffer) => T): T | Promise<T> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    // Drain nothing: the connection is closed after the 413 so the client stops sending.
    req.resume();
    return Promise.reject(new GatewayError('payload_too_large', `the body exceeds ${limit} bytes`));
  }
  const now = takeWhole(req, declared, limit);
  if (now) return use(now);
  // Called within the request event (no await before it: a token verified before is answered at
  // once), the parser has not yet pushed the body of this very packet; it has once the microtask
  // queue turns. Only a body still missing then is waited for. A `then` on a promise already
  // settled is that turn at the cost of one promise (`queueMicrotask` would cost more: Node wraps
  // each callback in an AsyncResource).
  return SETTLED.then(() => {
    const body = takeWhole(req, declared, limit);
    return body ? use(body) : arriving(req, limit).then(use);
  });
}

/** Settled once, for `then` to queue a callback on. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * The body when it is all here and nothing has read from it: every declared byte is buffered (the
 * parser passes no byte past Content-Length to the body, RFC 9112 §6.2), or the end of a chunked
 * body was seen. Undefined otherwise.
 */
function takeWhole(req: IncomingMessage, declared: string | undefined, limit: number): Buffer | undefined {
  const whole = req.complete || (declared !== undefined && req.readableLength === Number(declared));
  if (!whole || req.readableFlowing !== null || req.readableEnded || req.readableLength > limit) return undefined;
  const body = (req.read() as Buffer | null) ?? EMPTY;
  // The parser reports the end of the message later, in another turn of the event loop: flowing,
  // the emptied stream then ends ('end', 'close') as a stream read to its end does. No byte can
  // follow the declared length.
  if (!req.complete) req.resume();
  return body;
}

/** The body as it arrives, counted against the limit while it does. */
function arriving(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        req.resume();
        reject(new GatewayError('payload_too_large', `the body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!failed) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', (err) => {
      if (!failed) reject(new GatewayError('invalid_message', 'the request body could not be read', { reason: err.message }));
    });
  });
}
