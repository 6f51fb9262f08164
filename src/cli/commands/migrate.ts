/**
 * `mcp-warden migrate`: brings the configured storage's tables up to date (start does the same),
 * or moves an installation: `--from <sqlite file> --to <postgres url>` copies everything, counts
 * checked, in one transaction.
 */
import { existsSync } from 'node:fs';
import { configFromOptions } from '../config-options.ts';
import type { Command } from '../command.ts';
import { parseOptions, UsageError } from '../options.ts';

const HELP = `usage: mcp-warden migrate [--config FILE | --demo]
       mcp-warden migrate --from FILE --to URL [--schema NAME]

  (no --from)     apply pending schema migrations to the configured storage and exit
  --from FILE     an existing SQLite database (storage.sqlite.path), read only
  --to URL        an empty PostgreSQL database: postgres://user@host:5432/db
  --schema NAME   put the tables in this schema (as storage.postgres.schema)

Every table is copied in one transaction and the row counts of both sides are compared before
it commits: either everything moves or nothing changes. Then set storage.postgres.url.`;

export const run: Command = async (ctx) => {
  const { values } = parseOptions(ctx.args, {
    config: { type: 'string', short: 'c' }, demo: { type: 'boolean' }, from: { type: 'string' }, to: { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) { ctx.stdout.write(`${HELP}\n`); return 0; }
  if (ctx.checkOnly) return 0; // parsed: nothing more to do (docs tests)
  const { openStorage, redactUrl } = await import('../../storage/index.ts');
  if (values.from === undefined && values.to === undefined) {
    // Applying migrations may create the database the configuration names.
    const config = configFromOptions(values, ctx.env, { create: true });
    const storage = await openStorage(config);
    await storage.close();
    ctx.stdout.write(`schema up to date on ${storage.kind} (${storage.location})\n`);
    return 0;
  }
  if (values.from === undefined || values.to === undefined) throw new UsageError('give both --from <sqlite file> and --to <postgres url>');
  if (!existsSync(values.from)) throw new UsageError(`no SQLite database at ${values.from}`);
  if (!/^postgres(ql)?:\/\//.test(values.to)) throw new UsageError('--to must be a postgres:// or postgresql:// URL');
  const [{ openDatabase }, { parseConfig }, { copySqliteToPostgres }] = await Promise.all([
    import('../../storage/sqlite/database.ts'), import('../../config/load.ts'), import('../../storage/copy.ts'),
  ]);
  const source = openDatabase(values.from);
  // The target's tables are created by the same migrations `start` runs.
  const target = await openStorage(parseConfig({ publicUrl: 'http://localhost', storage: { postgres: { url: values.to, ...(values.schema ? { schema: values.schema } : {}) } }, servers: [{ name: 'x', path: '/mcp', upstream: { stdio: { command: 'true' } } }] }));
  try {
    if (target.audit.kind !== 'postgres') throw new Error('the target is not PostgreSQL');
    const results = await copySqliteToPostgres(source, target.audit.db);
    for (const r of results) ctx.stdout.write(`${r.table.padEnd(24)} ${String(r.source).padStart(8)} → ${String(r.copied).padStart(8)}\n`);
    ctx.stdout.write(`moved ${values.from} to ${redactUrl(values.to)}: every count matches. Set storage.postgres.url (and schema) in the configuration.\n`);
    return 0;
  } finally {
    source.close();
    await target.close();
  }
};
