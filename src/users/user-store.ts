/**
 * The built-in user store: usernames, scrypt password hashes and roles.
 * Used by the embedded authorization server's login, by `mcp-warden users` and by
 * `mcp-warden explain --user` to resolve a user's roles.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promisify } from 'node:util';
import type { UserRecord, UserRecords } from '../storage/users.ts';

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

function toUser(r: UserRecord): User {
  return { username: r.username, roles: r.roles, createdAt: r.createdAt, ...(r.disabledAt !== undefined ? { disabledAt: r.disabledAt } : {}) };
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
  readonly #records: UserRecords;
  readonly #roles: readonly string[];
  readonly #cost: number | undefined;

  /** `records`: where accounts are kept (SQLite or PostgreSQL, src/storage/users.ts). */
  constructor(records: UserRecords, roles: readonly string[] = ['admin', 'member'], options: { testHashCost?: number } = {}) {
    this.#records = records;
    this.#roles = roles;
    this.#cost = options.testHashCost;
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
    if (await this.#records.get(username)) throw new UserStoreError(`user "${username}" already exists`);
    const passwordHash = await hashPassword(password, this.#cost);
    const createdAt = Date.now();
    if (!await this.#records.insert({ username, passwordHash, roles, createdAt })) throw new UserStoreError(`user "${username}" already exists`);
    return { username, roles, createdAt };
  }

  async get(username: string): Promise<User | undefined> {
    const r = await this.#records.get(username);
    return r ? toUser(r) : undefined;
  }

  /** The user when the account exists and is enabled: who may sign in and hold tokens. */
  async getActive(username: string): Promise<User | undefined> {
    const user = await this.get(username);
    return user && user.disabledAt === undefined ? user : undefined;
  }

  async list(): Promise<User[]> {
    return (await this.#records.list()).map(toUser);
  }

  /** How many accounts exist (disabled ones included), without reading them. */
  count(): Promise<number> {
    return this.#records.count();
  }

  /** Disables (at `at`, ms) or enables an account; false when there is no such user. */
  setDisabled(username: string, disabled: boolean, at: number = Date.now()): Promise<boolean> {
    return this.#records.update(username, { disabledAt: disabled ? at : null });
  }

  remove(username: string): Promise<boolean> {
    return this.#records.remove(username);
  }

  async setRoles(username: string, roles: string[]): Promise<void> {
    this.#validateRoles(roles);
    if (!await this.#records.update(username, { roles })) throw new UserStoreError(`no user "${username}"`);
  }

  async setPassword(username: string, password: string): Promise<void> {
    validatePassword(password);
    if (!await this.#records.get(username)) throw new UserStoreError(`no user "${username}"`);
    const passwordHash = await hashPassword(password, this.#cost);
    if (!await this.#records.update(username, { passwordHash })) throw new UserStoreError(`no user "${username}"`);
  }

  /**
   * Returns the user when the password matches and the account is enabled, in time independent
   * of whether the user exists (a disabled account is checked like any other, then refused).
   */
  async authenticate(username: string, password: string): Promise<User | undefined> {
    const record = await this.#records.get(username);
    if (!record) {
      dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
      await verifyPassword(password, await dummyHash);
      return undefined;
    }
    return (await verifyPassword(password, record.passwordHash)) && record.disabledAt === undefined ? toUser(record) : undefined;
  }
}
