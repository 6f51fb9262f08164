/** Reads a request body up to a limit (413 beyond it, checked before and while reading). */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from './errors.ts';

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    // Drain nothing: the connection is closed after the 413 so the client stops sending.
    req.resume();
    return Promise.reject(new GatewayError('payload_too_large', `the body exceeds ${limit} bytes`));
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
