/**
 * The built-in user store: usernames, scrypt password hashes and roles.
 * Used by the embedded authorization server's login, by `mcp-warden users` and by
 * `mcp-warden explain --user` to resolve a user's roles.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promisify } from 'node:util';
import { migrate, type SqliteDatabase } from '../storage/sqlite/database.ts';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: ScryptOptions) => Promise<Buffer>;

// OWASP password storage cheat sheet: scrypt N=2^17, r=8, p=1. maxmem must cover 128*N*r bytes.
const SCRYPT = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 } as const;
const KEY_LENGTH = 32;

export interface User {
  username: string;
  roles: string[];
  createdAt: number;
  /** Set while an administrator has disabled the account: no sign-in, no token. */
  disabledAt?: number;
}

type UserRow = { username: string; roles: string; created_at: number; disabled_at: number | null };

function toUser(row: UserRow): User {
  return { username: row.username, roles: JSON.parse(row.roles) as string[], createdAt: row.created_at, ...(row.disabled_at !== null ? { disabledAt: row.disabled_at } : {}) };
}

export class UserStoreError extends Error {
  override name = 'UserStoreError';
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function validateUsername(username: string): void {
  if (!USERNAME.test(username)) {
    throw new UserStoreError('a username is 1-64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit');
  }
}

export function validatePassword(password: string): void {
  if (password.length < 8) throw new UserStoreError('a password needs at least 8 characters');
  if (password.length > 1024) throw new UserStoreError('a password may have at most 1024 characters');
}

/**
 * `scrypt$N$r$p$salt$hash`, base64url parts: self-describing so parameters can be raised later.
 * `cost` (log2 N) is for test fixtures only; everything else uses the OWASP default.
 */
export async function hashPassword(password: string, cost?: number): Promise<string> {
  const salt = randomBytes(16);
  const params = cost === undefined ? SCRYPT : { ...SCRYPT, N: 2 ** Math.max(12, Math.min(17, cost)) };
  const hash = await scrypt(password, salt, KEY_LENGTH, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = encoded.split('$');
  if (kind !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const N = Number(n);
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) + 1024 * 1024,
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

// A hash of a random password, compared against when the user does not exist, so a login for
// an unknown user takes as long as one for a known user (no username enumeration by timing).
let dummyHash: Promise<string> | undefined;

export class UserStore {
  readonly #db: SqliteDatabase;
  readonly #roles: readonly string[];

  readonly #cost: number | undefined;

  /** `options.testHashCost` (log2 scrypt N, 12…17) makes test fixtures fast; never set it elsewhere. */
  constructor(db: SqliteDatabase, roles: readonly string[] = ['admin', 'member'], options: { testHashCost?: number } = {}) {
    this.#db = db;
    this.#roles = roles;
    this.#cost = options.testHashCost;
    migrate(db, 'users', [
      `CREATE TABLE users (
         username TEXT PRIMARY KEY,
         password_hash TEXT NOT NULL,
         roles TEXT NOT NULL,
         created_at INTEGER NOT NULL)`,
      // `users disable`: the account stays (its name is not reusable by someone else) but can
      // neither sign in nor get tokens.
      'ALTER TABLE users ADD COLUMN disabled_at INTEGER',
    ]);
  }

  #validateRoles(roles: string[]): void {
    for (const role of roles) {
      if (!this.#roles.includes(role)) {
        throw new UserStoreError(`unknown role "${role}"; configured roles are: ${this.#roles.join(', ')}`);
      }
    }
  }

  async add(username: string, password: string, roles: string[]): Promise<User> {
    validateUsername(username);
    validatePassword(password);
    this.#validateRoles(roles);
    if (this.get(username)) throw new UserStoreError(`user "${username}" already exists`);
    const hash = await hashPassword(password, this.#cost);
    const createdAt = Date.now();
    this.#db.prepare('INSERT INTO users (username, password_hash, roles, created_at) VALUES (?, ?, ?, ?)').run(username, hash, JSON.stringify(roles), createdAt);
    return { username, roles, createdAt };
  }

  // Read on every token the authorization server issues (roles claim): prepared once.
  #getStatement: ReturnType<SqliteDatabase['prepare']> | undefined;

  get(username: string): User | undefined {
    this.#getStatement ??= this.#db.prepare('SELECT username, roles, created_at, disabled_at FROM users WHERE username = ?');
    const row = this.#getStatement.get(username) as UserRow | undefined;
    return row ? toUser(row) : undefined;
  }

  /** The user when the account exists and is enabled: who may sign in and hold tokens. */
  getActive(username: string): User | undefined {
    const user = this.get(username);
    return user && user.disabledAt === undefined ? user : undefined;
  }

  list(): User[] {
    const rows = this.#db.prepare('SELECT username, roles, created_at, disabled_at FROM users ORDER BY username').all() as UserRow[];
    return rows.map(toUser);
  }

  /** Disables (at `at`, ms) or enables an account; false when there is no such user. */
  setDisabled(username: string, disabled: boolean, at: number = Date.now()): boolean {
    return this.#db.prepare('UPDATE users SET disabled_at = ? WHERE username = ?').run(disabled ? at : null, username).changes > 0;
  }

  remove(username: string): boolean {
    return this.#db.prepare('DELETE FROM users WHERE username = ?').run(username).changes > 0;
  }

  setRoles(username: string, roles: string[]): void {
    this.#validateRoles(roles);
    const changed = this.#db.prepare('UPDATE users SET roles = ? WHERE username = ?').run(JSON.stringify(roles), username).changes;
    if (!changed) throw new UserStoreError(`no user "${username}"`);
  }

  async setPassword(username: string, password: string): Promise<void> {
    validatePassword(password);
    if (!this.get(username)) throw new UserStoreError(`no user "${username}"`);
    const hash = await hashPassword(password, this.#cost);
    this.#db.prepare('UPDATE users SET password_hash = ? WHERE username = ?').run(hash, username);
  }

  /**
   * Returns the user when the password matches and the account is enabled, in time independent
   * of whether the user exists (a disabled account is checked like any other, then refused).
   */
  async authenticate(username: string, password: string): Promise<User | undefined> {
    const row = this.#db.prepare('SELECT password_hash FROM users WHERE username = ?').get(username) as { password_hash: string } | undefined;
    if (!row) {
      dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
      await verifyPassword(password, await dummyHash);
      return undefined;
    }
    return (await verifyPassword(password, row.password_hash)) ? this.getActive(username) : undefined;
  }
}
