/**
 * RFC 7591 §3.1 registration requests, parsed at the edge: the JSON body is read (bounded),
 * parsed and its client metadata type-checked (client-metadata.ts) before oidc-provider sees it,
 * because oidc-provider reads some fields (the `*_alg` ones, to decide whether a secret is
 * needed) before its own client schema runs, and an object there is a 500. oidc-provider then
 * gets a fresh request carrying the same bytes.
 */
import { IncomingMessage } from 'node:http';
import { assertClientMetadataTypes } from './client-metadata.ts';
import { AuthorizationServerError } from './errors.ts';

/** oidc-provider's own body limit (lib/shared/selective_body.js): larger bodies are refused there too. */
export const MAX_REGISTRATION_BYTES = 56 * 1024;

function isJson(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * Reads and checks a registration request. Returns the request oidc-provider should handle:
 * `req` itself when the body is not JSON (oidc-provider answers that with its own
 * invalid_request), else a replay of the body that was read.
 * @throws AuthorizationServerError invalid_request (too large, not JSON) or invalid_client_metadata
 * @see RFC 7591 §3.1, §3.2.2
 */
export async function parseRegistrationRequest(req: IncomingMessage): Promise<IncomingMessage> {
  if (!isJson(req)) return req;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_REGISTRATION_BYTES) {
        throw new AuthorizationServerError('invalid_request', `the registration request is larger than ${MAX_REGISTRATION_BYTES / 1024} KB`, { status: 413 });
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof AuthorizationServerError) throw err;
    // A body the HTTP parser refused (a malformed chunk) or a client that went away: the
    // client's fault, not a server error (Node has already answered 400 or closed the socket).
    throw new AuthorizationServerError('invalid_request', 'the request body could not be read', { reason: `body read failed: ${(err as Error).message}` });
  }
  const body = Buffer.concat(chunks, size);
  let metadata: unknown;
  try {
    metadata = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AuthorizationServerError('invalid_request', 'the registration request body is not valid JSON');
  }
  assertClientMetadataTypes(metadata, 'the registration request');
  return replay(req, body);
}

/** A request with `req`'s line and headers whose body is `body`, already complete. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new IncomingMessage(req.socket);
  copy.method = req.method!;
  copy.url = req.url!;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.headers = { ...req.headers };
  copy.rawHeaders = [...req.rawHeaders];
  copy.complete = true;
  copy.push(body);
  copy.push(null);
  return copy;
}
