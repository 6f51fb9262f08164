/**
 * Untrusted input of the account pages: the urlencoded form body, and the credential a user
 * submits. Each parse function returns a typed value or throws an AccountError with a sentence a
 * person understands.
 */
import type { IncomingMessage } from 'node:http';
import { AccountError } from './errors.ts';

const MAX_FORM_BYTES = 16 * 1024;
/** The longest credential accepted, in UTF-8 bytes (API keys and tokens are far shorter). */
export const MAX_SECRET_BYTES = 4096;

/** Reads an application/x-www-form-urlencoded body: size-limited, no repeated fields. */
export async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new AccountError(400, 'Bad request', 'Use the form on the page.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new AccountError(413, 'Too large', `The form was larger than ${MAX_FORM_BYTES / 1024} KiB. A credential is at most ${MAX_SECRET_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  const form = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    if (form.has(k)) throw new AccountError(400, 'Bad request', 'The form was sent with a field repeated. Use the form on the page.');
    form.set(k, v);
  }
  return form;
}

/**
 * The credential to store: surrounding spaces removed; not empty, at most MAX_SECRET_BYTES, no
 * control characters (it becomes an environment variable or a header value). For a header
 * (RFC 9110 §5.5) it must be visible ASCII and spaces.
 * @throws AccountError (400) whose message says what to fix
 */
export function parseSecret(value: string | undefined, delivery: 'env' | 'header'): string {
  const secret = (value ?? '').trim();
  if (secret === '') throw new AccountError(400, 'Nothing to store', 'Enter the credential to store; the field was empty.');
  if (Buffer.byteLength(secret, 'utf8') > MAX_SECRET_BYTES) {
    throw new AccountError(400, 'Too long', `That credential is longer than ${MAX_SECRET_BYTES} bytes. Check that you pasted only the token or key.`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(secret)) {
    throw new AccountError(400, 'Not a credential', 'The credential contains a line break or another control character. Paste it again without them.');
  }
  if (delivery === 'header' && !/^[\x20-\x7e]+$/.test(secret)) {
    throw new AccountError(400, 'Not a credential', 'This server sends the credential in an HTTP header, which takes only ASCII letters, digits and punctuation.');
  }
  return secret;
}
