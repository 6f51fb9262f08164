/** Reads a request body up to a limit (413 beyond it, checked before and while reading). */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from './errors.ts';

const EMPTY = Buffer.alloc(0);

/**
 * The body, or a promise of it. When the HTTP parser already has the whole message (a small POST
 * arrives with its headers in one read, and the endpoint awaited authentication before reading),
 * the buffered chunks are taken at once: no listeners, no promise. Otherwise it is read as it
 * arrives.
 */
export function readBody(req: IncomingMessage, limit: number): Buffer | Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    // Drain nothing: the connection is closed after the 413 so the client stops sending.
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  // complete: the parser saw the end of the message, so every chunk is in the stream's buffer
  // unless someone already read it (nobody else reads a POST body; flowing would mean they did).
  if (req.complete && req.readableFlowing === null) {
    if (req.readableLength > limit) {
      req.resume();
      return Promise.reject(tooLarge(limit));
    }
    // read() without a size returns the whole buffer as one Buffer (null when it is empty).
    return (req.read() as Buffer | null) ?? EMPTY;
  }
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
        reject(tooLarge(limit));
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

function tooLarge(limit: number): GatewayError {
  return new GatewayError('payload_too_large', `the body exceeds ${limit} bytes`);
}
