/** Placeholder until issue 4 lands: audit sinks are created here. */
import type { Config } from '../config/schema.ts';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import type { AuditSink } from './types.ts';

export type { AuditEvent, AuditSink } from './types.ts';

export function createAuditSink(_config: Config, _db: SqliteDatabase): AuditSink {
  return { record: () => {}, close: async () => {} };
}
