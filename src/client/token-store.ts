/**
 * The token store: one JSON file per MCP server under `<home>/servers/`, mode 0600 in a 0700
 * folder (OAuth 2.1 §7.1, MCP C-20). Client registrations are keyed by the authorization server's
 * issuer (MCP 2026-07-28, SEP-2352), so a server that moves to another AS gets a fresh registration.
 *
 * Writes are atomic (temp file + rename) and serialized across processes by a lock file; a
 * refresh holds a second lock (`refreshLock`) so concurrent processes refresh once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ClientError } from './errors.ts';
import { withFileLock, type LockOptions } from './file-lock.ts';
import { ensurePrivateDir } from './paths.ts';

const StoredTokensSchema = z.looseObject({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  refresh_token: z.string().optional(),
  scope: z.string().optional(),
  expires_in: z.number().optional(),
  /** Absolute expiry, ms since the epoch, computed when the tokens were saved. */
  expires_at: z.number().optional(),
  issuer: z.string().optional(),
});

const ServerRecordSchema = z.object({
  version: z.literal(1),
  serverUrl: z.string(),
  clients: z.record(z.string(), z.looseObject({ client_id: z.string().min(1), issuer: z.string().optional() })),
  tokens: StoredTokensSchema.optional(),
  discovery: z.looseObject({ authorizationServerUrl: z.string() }).optional(),
  /** The loopback port of the last login, reused so the registered redirect URI stays exact. */
  redirectPort: z.number().int().optional(),
  /** Scopes requested so far, for the step-up union (MCP 2026-07-28, SEP-2350). */
  requestedScope: z.string().optional(),
  /** The DPoP key the tokens are bound to (RFC 9449), when DPoP is on. */
  dpopKey: z.object({ alg: z.literal('ES256'), privateJwk: z.looseObject({}), publicJwk: z.looseObject({}) }).optional(),
});

export type StoredTokens = z.infer<typeof StoredTokensSchema>;
export type ServerRecord = z.infer<typeof ServerRecordSchema>;

export function emptyRecord(serverUrl: string): ServerRecord {
  return { version: 1, serverUrl, clients: {} };
}

export class TokenStore {
  readonly dir: string;

  constructor(
    home: string,
    private readonly lockOptions: LockOptions = {},
  ) {
    this.dir = join(home, 'servers');
  }

  /** The file that holds one server's record; the name is a hash so URLs need no escaping. */
  pathFor(serverUrl: string): string {
    return join(this.dir, `${createHash('sha256').update(serverUrl).digest('hex').slice(0, 32)}.json`);
  }

  /** Reads the record; a missing file is an empty record, an unparsable one throws `store_corrupt`. */
  async read(serverUrl: string): Promise<ServerRecord> {
    const path = this.pathFor(serverUrl);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyRecord(serverUrl);
      throw err;
    }
    let parsed: ServerRecord;
    try {
      parsed = ServerRecordSchema.parse(JSON.parse(text));
    } catch {
      throw new ClientError('store_corrupt', `the token store ${path} is corrupt; it will be set aside and a fresh login is needed`);
    }
    if (parsed.serverUrl !== serverUrl) {
      throw new ClientError('store_corrupt', `the token store ${path} belongs to ${parsed.serverUrl}, not ${serverUrl}`);
    }
    return parsed;
  }

  /** Read-modify-write under the store lock; returns the record written. */
  async update(serverUrl: string, change: (record: ServerRecord) => ServerRecord | void): Promise<ServerRecord> {
    ensurePrivateDir(this.dir);
    const path = this.pathFor(serverUrl);
    return withFileLock(`${path}.lock`, async () => {
      const record = await this.read(serverUrl);
      const next = change(record) ?? record;
      await this.write(path, next);
      return next;
    }, this.lockOptions);
  }

  /** Holds the refresh lock for one server while `fn` runs (see the file comment). */
  refreshLock<T>(serverUrl: string, fn: () => Promise<T>, whileWaiting?: () => Promise<T | undefined>): Promise<T> {
    ensurePrivateDir(this.dir);
    // Long enough to wait for another process's browser sign-in (its lock is kept fresh meanwhile).
    return withFileLock(`${this.pathFor(serverUrl)}.refresh.lock`, fn, { timeoutMs: 360_000, ...this.lockOptions, ...(whileWaiting && { whileWaiting }) });
  }

  /** Forgets everything about one server. */
  async remove(serverUrl: string): Promise<boolean> {
    const path = this.pathFor(serverUrl);
    try {
      await rm(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Moves a corrupt file aside (kept for inspection, still 0600) so a fresh login can proceed. */
  async quarantine(serverUrl: string): Promise<string> {
    const path = this.pathFor(serverUrl);
    const aside = `${path}.corrupt-${Date.now()}`;
    await rename(path, aside);
    return aside;
  }

  private async write(path: string, record: ServerRecord): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600); // the umask may have narrowed it further, never widened; be explicit
    await rename(tmp, path);
  }
}
