/**
 * The token store: one file per MCP server under `<home>/servers/`, mode 0600 in a 0700 folder
 * (OAuth 2.1 §7.1; MCP §Token Storage: clients MUST store tokens securely). Client registrations are keyed by the authorization server's
 * issuer (MCP 2026-07-28, SEP-2352), so a server that moves to another AS gets a fresh registration.
 *
 * Where the secrets live (the OS keychain where available, never plaintext in a shared place):
 *   - keychain mode: the file holds the record sealed with AES-256-GCM (keychain/envelope.ts)
 *     under a random data key kept in the OS keychain (keychain/data-key.ts), one item per store;
 *   - file mode: the record as JSON in the 0600 file, with a one-time notice saying so;
 *   - auto: keychain mode when a keychain tool exists and a round trip through it works, else file;
 *     but once the store has keychain state (a sealed file, or the marker left when its data key
 *     was created), auto is keychain mode: a keychain that is briefly unreachable (no D-Bus in
 *     cron or a systemd unit) fails with `keychain_unavailable` instead of writing new servers in
 *     plaintext beside the sealed ones. Every process that falls back says so, once (no once-only marker).
 * A plaintext file met in keychain mode is read and sealed on the next write (migration). A file
 * that fails authentication, or whose key is gone from the keychain, is `store_corrupt`: the
 * session sets it aside and a fresh login follows; it is never read or rewritten as plaintext.
 *
 * Writes are atomic (temp file + rename) and serialized across processes by a lock file; a
 * refresh holds a second lock (`refreshLock`) so concurrent processes refresh once. Creating and
 * deleting the data key happen under a third, store-wide lock, together with the writes that use
 * it, so no file is ever sealed under a key another process is about to delete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ClientError } from './errors.ts';
import { withFileLock, type LockOptions } from './file-lock.ts';
import { ensurePrivateDir } from './paths.ts';
import { dataKeyAccount, newDataKey, parseDataKey, type DataKey } from './keychain/data-key.ts';
import { findKeychain, probeKeychain } from './keychain/detect.ts';
import { isSealed, open, openServerName, parseSealed, seal } from './keychain/envelope.ts';
import type { Keychain, TokenStoreMode } from './keychain/types.ts';

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

export interface TokenStorageOptions {
  /** Default `auto`. */
  mode?: TokenStoreMode;
  /** The environment of the keychain tools (PATH, DBUS_SESSION_BUS_ADDRESS); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** A keychain to use instead of detecting one (`null`: none). */
  keychain?: Keychain | null;
  /** Deadline of each keychain tool run (default 5 s). */
  keychainTimeoutMs?: number;
  /** Human-facing notices (the one-time plaintext notice). */
  onNotice?: (message: string) => void;
}

/** What the store resolved to: sealed files under a keychain key, or plaintext files (and why). */
export type TokenStoreBackend = { kind: 'keychain'; keychain: Keychain } | { kind: 'file'; reason: string };

const PLAINTEXT_NOTICE_MARKER = '.plaintext-notice-shown';
/** Stores (by folder) whose fallback notice this process already printed: once per process, not per write. */
const fallbackNoticeShown = new Set<string>();
/** Left while the store's data key is in the keychain: `auto` then never falls back to plaintext. */
const KEYCHAIN_MARKER = '.keychain-data-key';

export class TokenStore {
  readonly dir: string;
  readonly mode: TokenStoreMode;
  private readonly keyAccount: string;
  private readonly keys = new Map<string, DataKey>();
  private backend: Promise<TokenStoreBackend> | undefined;

  constructor(
    home: string,
    private readonly lockOptions: LockOptions = {},
    private readonly storage: TokenStorageOptions = {},
  ) {
    this.dir = join(home, 'servers');
    this.mode = storage.mode ?? 'auto';
    this.keyAccount = dataKeyAccount(home);
  }

  /**
   * Decides once per store where secrets go (see the file comment). `auto` checks the data key
   * first (one tool run when the keychain already holds it), then a probe round trip.
   */
  resolveBackend(): Promise<TokenStoreBackend> {
    this.backend ??= this.detectBackend();
    return this.backend;
  }

  private async detectBackend(): Promise<TokenStoreBackend> {
    if (this.mode === 'file') return { kind: 'file', reason: '--token-store file was chosen' };
    const found =
      this.storage.keychain === undefined
        ? findKeychain({ env: this.storage.env ?? process.env, ...(this.storage.keychainTimeoutMs !== undefined && { timeoutMs: this.storage.keychainTimeoutMs }) })
        : this.storage.keychain
          ? { keychain: this.storage.keychain }
          : { reason: 'no keychain was given' };
    let reason: string;
    if ('reason' in found) {
      reason = `no OS keychain: ${found.reason}`;
    } else {
      const { keychain } = found;
      try {
        const key = parseDataKey((await keychain.get(this.keyAccount)) ?? '');
        if (key) {
          this.keys.set(key.kid, key);
          return { kind: 'keychain', keychain };
        }
        const probe = await probeKeychain(keychain);
        if (probe.ok) return { kind: 'keychain', keychain };
        reason = `the OS keychain (${keychain.name}) does not work here: ${probe.reason}`;
      } catch (err) {
        reason = `the OS keychain (${keychain.name}) does not work here: ${(err as Error).message}`;
      }
    }
    if (this.mode === 'keychain') throw new ClientError('keychain_unavailable', `--token-store keychain: ${reason}`);
    // A store that already keeps its secrets in the keychain never gains plaintext files
    // because the keychain was unreachable once; the user fixes the keychain or chooses file mode.
    if (await this.hasKeychainState()) {
      throw new ClientError('keychain_unavailable', `the token store ${this.dir} keeps its tokens encrypted under a key in the OS keychain, which cannot be used now (${reason}); make the keychain reachable (a D-Bus session with an unlocked keyring), or run with --token-store file to keep tokens unencrypted from now on`);
    }
    return { kind: 'file', reason };
  }

  /** Whether this store has used the keychain: its marker, or any sealed server file. */
  private async hasKeychainState(): Promise<boolean> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (names.includes(KEYCHAIN_MARKER)) return true;
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      try {
        if (isSealed(JSON.parse(await readFile(join(this.dir, name), 'utf8')))) return true;
      } catch {
        // Unreadable or not JSON: not evidence either way (read() reports it for its own server).
      }
    }
    return false;
  }

  /** The file that holds one server's record; the name is a hash so URLs need no escaping. */
  pathFor(serverUrl: string): string {
    return join(this.dir, `${createHash('sha256').update(serverUrl).digest('hex').slice(0, 32)}.json`);
  }

  /** Reads the record; a missing file is an empty record, an unparsable one throws `store_corrupt`. */
  async read(serverUrl: string): Promise<ServerRecord> {
    // An explicit keychain mode fails at the first use, not at the first write after a sign-in;
    // so does auto for a store that already uses the keychain (detectBackend).
    if (this.mode === 'keychain' || (this.mode === 'auto' && this.backend === undefined && (await this.hasKeychainState()))) await this.resolveBackend();
    const path = this.pathFor(serverUrl);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyRecord(serverUrl);
      throw err;
    }
    const corrupt = () => new ClientError('store_corrupt', `the token store ${path} is corrupt; it will be set aside and a fresh login is needed`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw corrupt();
    }
    if (isSealed(json)) json = await this.unseal(path, serverUrl, json);
    let parsed: ServerRecord;
    try {
      parsed = ServerRecordSchema.parse(json);
    } catch {
      throw corrupt();
    }
    if (parsed.serverUrl !== serverUrl) {
      throw new ClientError('store_corrupt', `the token store ${path} belongs to ${parsed.serverUrl}, not ${serverUrl}`);
    }
    return parsed;
  }

  /**
   * Every stored server, for `mcp-warden status`: the record, or why it cannot be read. A sealed
   * file names its server sealed under the data key; the name must hash to the file's own name.
   */
  async list(): Promise<Array<{ path: string; serverUrl?: string; record?: ServerRecord; problem?: string }>> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((name) => /^[0-9a-f]{32}\.json$/.test(name)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const entries = [];
    for (const name of names) {
      const path = join(this.dir, name);
      let serverUrl: string | undefined;
      try {
        const json = JSON.parse(await readFile(path, 'utf8')) as unknown;
        serverUrl = isSealed(json) ? await this.sealedServerName(json) : (json as { serverUrl?: unknown }).serverUrl as string | undefined;
      } catch {
        // unreadable: reported below
      }
      if (typeof serverUrl !== 'string' || this.pathFor(serverUrl) !== path) {
        entries.push({ path, problem: 'cannot tell which server this file belongs to (damaged, or encrypted by an older version); it is used again when you sign in to its server' });
        continue;
      }
      try {
        entries.push({ path, serverUrl, record: await this.read(serverUrl) });
      } catch (err) {
        entries.push({ path, serverUrl, problem: (err as Error).message });
      }
    }
    return entries;
  }

  /** The server URL sealed in a file's header, opened with the keychain's data key. */
  private async sealedServerName(json: unknown): Promise<string | undefined> {
    const sealed = parseSealed(json);
    const backend = await this.resolveBackend().catch(() => undefined);
    if (!sealed || backend?.kind !== 'keychain') return undefined;
    const key = await this.keyFor(sealed.kid, backend.keychain);
    return key ? openServerName(key, sealed) : undefined;
  }

  /** Read-modify-write under the store lock; returns the record written. */
  async update(serverUrl: string, change: (record: ServerRecord) => ServerRecord | void): Promise<ServerRecord> {
    ensurePrivateDir(this.dir);
    const path = this.pathFor(serverUrl);
    return withFileLock(`${path}.lock`, async () => {
      const record = await this.read(serverUrl);
      const next = change(record) ?? record;
      await this.write(path, serverUrl, next);
      return next;
    }, this.lockOptions);
  }

  /** Holds the refresh lock for one server while `fn` runs (see the file comment). */
  refreshLock<T>(serverUrl: string, fn: () => Promise<T>, whileWaiting?: () => Promise<T | undefined>): Promise<T> {
    ensurePrivateDir(this.dir);
    // Long enough to wait for another process's browser sign-in (its lock is kept fresh meanwhile).
    return withFileLock(`${this.pathFor(serverUrl)}.refresh.lock`, fn, { timeoutMs: 360_000, ...this.lockOptions, ...(whileWaiting && { whileWaiting }) });
  }

  /** Forgets everything about one server; the last server out also deletes the keychain's data key. */
  async remove(serverUrl: string): Promise<boolean> {
    const path = this.pathFor(serverUrl);
    let removed = true;
    try {
      await rm(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      removed = false;
    }
    const backend = await this.resolveBackend();
    if (backend.kind === 'keychain') {
      ensurePrivateDir(this.dir);
      await withFileLock(this.keyLockPath, async () => {
        const left = (await readdir(this.dir)).filter((name) => name.endsWith('.json'));
        if (left.length > 0) return;
        await backend.keychain.delete(this.keyAccount);
        await rm(join(this.dir, KEYCHAIN_MARKER), { force: true });
        this.keys.clear();
      }, this.lockOptions);
    }
    return removed;
  }

  /** Moves a corrupt file aside (kept for inspection, still 0600) so a fresh login can proceed. */
  async quarantine(serverUrl: string): Promise<string> {
    const path = this.pathFor(serverUrl);
    const aside = `${path}.corrupt-${Date.now()}`;
    await rename(path, aside);
    return aside;
  }

  private get keyLockPath(): string {
    return join(this.dir, '.data-key.lock');
  }

  /** The record inside a sealed file, or the error that sends the user to a fresh login. */
  private async unseal(path: string, serverUrl: string, json: unknown): Promise<unknown> {
    const sealed = parseSealed(json);
    if (!sealed) throw new ClientError('store_corrupt', `the token store ${path} is corrupt; it will be set aside and a fresh login is needed`);
    const backend = await this.resolveBackend();
    if (backend.kind === 'file') {
      if (this.mode === 'file') {
        throw new ClientError('store_corrupt', `the token store ${path} is encrypted under a key in the OS keychain, which --token-store file does not use; it will be set aside and a fresh login is needed`);
      }
      // Not a silent downgrade: the sealed tokens stay where they are until the keychain is back.
      throw new ClientError('keychain_unavailable', `the token store ${path} is encrypted under a key in the OS keychain, which cannot be used now (${backend.reason}); unlock the keyring, or run with --token-store file to set the store aside and sign in again`);
    }
    const key = await this.keyFor(sealed.kid, backend.keychain);
    if (!key) {
      throw new ClientError('store_corrupt', `the key that encrypted the token store ${path} is no longer in the OS keychain (deleted or replaced); the store will be set aside and a fresh login is needed`);
    }
    const text = open(key, serverUrl, sealed);
    if (text === undefined) {
      throw new ClientError('store_corrupt', `the token store ${path} failed its integrity check (AES-256-GCM): it was modified or damaged; it will be set aside and a fresh login is needed`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ClientError('store_corrupt', `the token store ${path} is corrupt; it will be set aside and a fresh login is needed`);
    }
  }

  /** The data key with id `kid`: from memory, else from the keychain if that is the one it holds now. */
  private async keyFor(kid: string, keychain: Keychain): Promise<DataKey | undefined> {
    const cached = this.keys.get(kid);
    if (cached) return cached;
    const current = parseDataKey((await keychain.get(this.keyAccount)) ?? '');
    if (!current) return undefined;
    this.keys.set(current.kid, current);
    return current.kid === kid ? current : undefined;
  }

  /** The keychain's current data key, created on first use; call under the key lock. */
  private async currentKey(keychain: Keychain): Promise<DataKey> {
    const current = parseDataKey((await keychain.get(this.keyAccount)) ?? '');
    if (current) {
      this.keys.set(current.kid, current);
      return current;
    }
    const { key, secret } = newDataKey();
    // The marker first: a key that reached the keychain is always recorded here (see KEYCHAIN_MARKER).
    await writeFile(join(this.dir, KEYCHAIN_MARKER), `the data key of this token store is kept in the OS keychain (${keychain.name})\n`, { mode: 0o600 });
    await keychain.set(this.keyAccount, secret, `mcp-warden token store key (${this.dir})`);
    this.keys.set(key.kid, key);
    return key;
  }

  private async write(path: string, serverUrl: string, record: ServerRecord): Promise<void> {
    const backend = await this.resolveBackend();
    if (backend.kind === 'keychain') {
      // The key is read (or created) and used under the store-wide key lock: see the file comment.
      await withFileLock(this.keyLockPath, async () => {
        const key = await this.currentKey(backend.keychain);
        await this.writeAtomically(path, `${JSON.stringify(seal(key, serverUrl, JSON.stringify(record)))}\n`);
      }, this.lockOptions);
      return;
    }
    await this.plaintextNotice(backend.reason);
    await this.writeAtomically(path, `${JSON.stringify(record, null, 2)}\n`);
  }

  /**
   * Says that tokens are kept unencrypted, and why: once in every process that writes when `auto`
   * fell back (the keychain may be missing only now, so a once-only marker would hide it), once per
   * store (a marker file remembers it) when the user chose `--token-store file`.
   */
  private async plaintextNotice(reason: string): Promise<void> {
    if (!this.storage.onNotice) return;
    if (this.mode === 'auto') {
      if (fallbackNoticeShown.has(this.dir)) return;
      fallbackNoticeShown.add(this.dir);
      this.storage.onNotice(`tokens are stored unencrypted in ${this.dir} (files 0600 in a 0700 folder) because ${reason}; see "Token storage" in docs/client.md`);
      return;
    }
    try {
      await writeFile(join(this.dir, PLAINTEXT_NOTICE_MARKER), `${new Date().toISOString()}\n`, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw err;
    }
    this.storage.onNotice(
      `tokens are stored unencrypted in ${this.dir} (files 0600 in a 0700 folder) because ${reason}; see "Token storage" in docs/client.md (shown once)`,
    );
  }

  private async writeAtomically(path: string, text: string): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await chmod(tmp, 0o600); // the umask may have narrowed it further, never widened; be explicit
    await rename(tmp, path);
  }
}
