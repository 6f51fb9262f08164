/**
 * The storage contract of the built-in user accounts: one record per username with its password
 * hash (scrypt, never the password) and roles. Validation, hashing and timing-safe verification
 * stay in src/users/user-store.ts; a backend only keeps records. Every backend passes
 * test/storage/users.test.ts. Times are milliseconds.
 */
export interface UserRecord {
  username: string;
  passwordHash: string;
  roles: string[];
  createdAt: number;
  /** Set while an administrator has disabled the account (ms): no sign-in, no token. */
  disabledAt?: number;
}

export interface UserRecords {
  /** Adds the record; false (nothing written) when the username exists already. */
  insert(record: UserRecord): Promise<boolean>;
  get(username: string): Promise<UserRecord | undefined>;
  /** Ordered by username. */
  list(): Promise<UserRecord[]>;
  /** How many records there are, disabled ones included; reads no record (start-up asks it on every boot). */
  count(): Promise<number>;
  /** True when a record was removed. */
  remove(username: string): Promise<boolean>;
  /** False when there is no such user. */
  update(username: string, change: { roles?: string[]; passwordHash?: string; disabledAt?: number | null }): Promise<boolean>;
}
