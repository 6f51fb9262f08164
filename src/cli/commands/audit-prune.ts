/**
 * `mcp-warden audit prune --before T`: deletes recorded decisions older than T, in bounded
 * chunks (src/audit/retention.ts), and prints how many were removed. The running gateway does
 * the same on its own for `audit.retention`; this is for a one-off clean-up or a shorter horizon.
 */
import { existsSync } from 'node:fs';
import { openDatabase } from '../../storage/sqlite/database.ts';
import { openStorage } from '../../storage/index.ts';
import { countAuditEventsBeforePostgres, pruneAuditEventsPostgres } from '../../audit/postgres-sink.ts';
import { pruneAuditEvents } from '../../audit/retention.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { configFromOptions } from '../config-options.ts';
import { parseTimeOption } from '../time-option.ts';

const HELP = `usage: mcp-warden audit prune [--config FILE | --demo] --before T [--dry-run]

  --before T           remove events older than T: ISO 8601 (2026-01-01T00:00:00Z) or an age (90d, 12h)
  --dry-run            only count what would be removed
`;

export const run: Command = async ({ args, env, stdout, checkOnly }) => {
  const { values } = parseOptions(args, {
    config: { type: 'string' },
    demo: { type: 'boolean' },
    before: { type: 'string' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  if (values.before === undefined) throw new UsageError('say which events to remove: --before 2026-01-01T00:00:00Z or --before 90d');
  const before = parseTimeOption('before', values.before, Date.now());
  if (checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, env);
  if (config.storage.postgres) {
    const storage = await openStorage(config);
    try {
      if (storage.audit.kind !== 'postgres') return 1;
      const when = new Date(before).toISOString();
      if (values['dry-run']) {
        stdout.write(`would remove ${await countAuditEventsBeforePostgres(storage.audit.db, before)} audit event(s) older than ${when} (dry run)\n`);
      } else {
        stdout.write(`removed ${await pruneAuditEventsPostgres(storage.audit.db, before)} audit event(s) older than ${when}\n`);
      }
      return 0;
    } finally {
      await storage.close();
    }
  }
  const path = config.storage.sqlite.path;
  if (path !== ':memory:' && !existsSync(path)) throw new Error(`no database at ${path}, so nothing to prune`);
  const db = openDatabase(path);
  try {
    const dryRun = values['dry-run'] === true;
    const { removed } = pruneAuditEvents(db, before, { dryRun });
    const when = new Date(before).toISOString();
    stdout.write(dryRun ? `would remove ${removed} audit event(s) older than ${when} (dry run)\n` : `removed ${removed} audit event(s) older than ${when}\n`);
    return 0;
  } finally {
    db.close();
  }
};
