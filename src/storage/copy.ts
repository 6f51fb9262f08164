/**
 * Moves an installation from the embedded SQLite file to PostgreSQL (`mcp-warden migrate --from
 * FILE --to URL`): every table of every owner is copied in one PostgreSQL transaction, and the
 * row counts of both sides are compared before it commits, so the move either carries everything
 * or changes nothing. The target must be empty: copying into a live database could merge two
 * installations' clients, users and keys.
 */
import type { SqliteDatabase } from './sqlite/database.ts';
import { AUDIT_COLUMNS, eventsOf, type StoredBatch } from '../audit/sqlite-batches.ts';
import { MIGRATION_TIMEOUT_MS, type PostgresDatabase } from './postgres/database.ts';

/** The tables of every owner (docs/storage.md), in an order that satisfies no constraint but is stable. */
export const TABLES: ReadonlyArray<{ table: string; columns: readonly string[]; binary?: readonly string[] }> = [
  { table: 'oidc_models', columns: ['model', 'id', 'payload', 'grant_id', 'uid', 'user_code', 'expires_at', 'consumed_at'] },
  { table: 'as_keys', columns: ['kid', 'use', 'jwk', 'created_at', 'retired_at'] },
  { table: 'as_consents', columns: ['account_id', 'client_id', 'resource', 'grant_id', 'scopes', 'created_at'] },
  // Not `seq`: the target's sequence numbers the rows anew (in the source's order), so positions
  // drawn after the move are never below the copied ones.
  { table: 'as_revocations', columns: ['kind', 'id', 'revoked_at', 'expires_at'] },
  { table: 'users', columns: ['username', 'password_hash', 'roles', 'created_at', 'disabled_at'] },
  { table: 'downstream_secret_keys', columns: ['server', 'kcv', 'created_at'], binary: ['kcv'] },
  { table: 'downstream_secrets', columns: ['server', 'user', 'nonce', 'ciphertext', 'tag', 'updated_at'], binary: ['nonce', 'ciphertext', 'tag'] },
  { table: 'downstream_settings', columns: ['name', 'value'] },
  // On SQLite the events of `audit_batches` (src/audit/sqlite-batches.ts); PostgreSQL keeps a row per event.
  { table: 'audit_events', columns: AUDIT_COLUMNS },
];

/**
 * The audit events of a SQLite file whose audit is stored as batches, in insertion order, as
 * rows of `AUDIT_COLUMNS`: read from the batches rather than the `audit_events` view, which would
 * decode and sort every event in SQL before the first one is copied.
 */
function auditRows(source: SqliteDatabase): unknown[][] {
  const rows: unknown[][] = [];
  for (const batch of source.prepare('SELECT events FROM audit_batches ORDER BY id').iterate() as IterableIterator<Pick<StoredBatch, 'events'>>) {
    for (const row of eventsOf(batch)) if (row !== null) rows.push(row);
  }
  return rows;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export interface CopyResult { table: string; source: number; copied: number }

const BATCH = 500;
const quote = (c: string) => `"${c}"`;

/** Copies every table; throws MigrationError (nothing committed) on a non-empty target or a count mismatch. */
export async function copySqliteToPostgres(source: SqliteDatabase, target: PostgresDatabase): Promise<CopyResult[]> {
  const present = new Set((source.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").all() as Array<{ name: string }>).map((r) => r.name));
  return target.transaction(async (tx) => {
    const results: CopyResult[] = [];
    for (const { table, columns, binary = [] } of TABLES) {
      const { rows: existing } = await tx.query<{ n: number }>(`count_target_${table}`, `SELECT COUNT(*)::int AS n FROM ${table}`);
      if (existing[0]!.n > 0) throw new MigrationError(`the target already holds ${existing[0]!.n} row(s) in ${table}: migrate into an empty database (or schema)`);
      if (!present.has(table)) {
        results.push({ table, source: 0, copied: 0 });
        continue;
      }
      // In insertion order, so audit events keep their order under the new ids.
      const rows = table === 'audit_events' && present.has('audit_batches') ? auditRows(source) : source.prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${table} ORDER BY rowid`).raw().all() as unknown[][];
      for (let i = 0; i < rows.length; i += BATCH) {
        const batch = rows.slice(i, i + BATCH);
        const values: unknown[] = [];
        const tuples = batch.map((row) => `(${row.map((v, j) => {
          values.push(binary.includes(columns[j]!) && v !== null ? Buffer.from(v as Uint8Array) : v);
          return `$${values.length}`;
        }).join(', ')})`);
        await tx.query(`copy_${table}_${batch.length}`, `INSERT INTO ${table} (${columns.map(quote).join(', ')}) VALUES ${tuples.join(', ')}`, values);
      }
      const { rows: after } = await tx.query<{ n: number }>(`count_target_${table}`, `SELECT COUNT(*)::int AS n FROM ${table}`);
      if (after[0]!.n !== rows.length) throw new MigrationError(`${table}: ${rows.length} row(s) in the SQLite file but ${after[0]!.n} in PostgreSQL; nothing was committed`);
      results.push({ table, source: rows.length, copied: after[0]!.n });
    }
    return results;
    // Moving an installation is a migration: its counts of large tables may take longer than a request's statement.
  }, { timeoutMs: MIGRATION_TIMEOUT_MS });
}
