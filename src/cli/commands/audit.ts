/**
 * `mcp-warden audit`: who did what, and why it was allowed. Reads the decision events the gateway
 * recorded in the configured SQLite database, filtered by user, client, server, decision and time.
 */
import { existsSync } from 'node:fs';
import { openDatabase } from '../../storage/sqlite/database.ts';
import { openStorage } from '../../storage/index.ts';
import { queryAuditEventsPostgres } from '../../audit/postgres-sink.ts';
import { queryAuditEvents, type AuditQuery } from '../../audit/query.ts';
import type { AuditEvent } from '../../audit/types.ts';
import { configFromOptions } from '../config-options.ts';
import { parseOptions, UsageError } from '../options.ts';
import { parseTimeOption } from '../time-option.ts';
import type { Command } from '../command.ts';

const HELP = `usage: mcp-warden audit [--config FILE | --demo] [filters] [--json] [--limit N]
       mcp-warden audit prune [--config FILE | --demo] --before T [--dry-run]

  --user U             events of this user (token subject)
  --client C           events of this OAuth client_id
  --server S           events of this configured server
  --decision D         allow or deny
  --since T            from this time: ISO 8601 (2026-01-21T10:00:00Z) or an age (90s, 15m, 1h, 2d)
  --until T            before this time, same forms
  --limit N            at most N events, newest first (default 50)
  --json               one JSON object per line instead of a table
`;

function cut(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/** The human-readable table `mcp-warden audit` prints: one line per event, long cells cut. */
export function formatTable(events: readonly AuditEvent[]): string {
  const header = ['TIME', 'DECISION', 'USER', 'CLIENT', 'SERVER', 'METHOD', 'TARGET', 'RULE', 'REASON'];
  const rows = events.map((e) => [
    e.time.replace(/\.\d+Z$/, 'Z'),
    e.decision,
    cut(e.subject, 24),
    cut(e.clientId, 32),
    e.server,
    e.method,
    cut(e.target ?? '-', 32),
    e.rule ?? '-',
    // A folded unauthenticated denial says how many requests it stands for (unauthenticated.ts).
    e.count !== undefined && e.count > 1 ? `${cut(e.reason, 52)} (×${e.count})` : cut(e.reason, 60),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export const run: Command = async (ctx) => {
  if (ctx.args[0] === 'prune') return (await import('./audit-prune.ts')).run({ ...ctx, args: ctx.args.slice(1) });
  const { args, env, stdout, checkOnly } = ctx;
  const { values } = parseOptions(args, {
    config: { type: 'string' },
    demo: { type: 'boolean' },
    user: { type: 'string' },
    client: { type: 'string' },
    server: { type: 'string' },
    decision: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) {
    stdout.write(HELP);
    return 0;
  }
  if (values.decision !== undefined && values.decision !== 'allow' && values.decision !== 'deny') {
    throw new UsageError(`--decision is allow or deny, not "${values.decision}"`);
  }
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit is a whole number from 1 to 100000');
  const now = Date.now();
  const query: AuditQuery = {
    subject: values.user,
    clientId: values.client,
    server: values.server,
    decision: values.decision as AuditQuery['decision'],
    since: values.since === undefined ? undefined : parseTimeOption('since', values.since, now),
    until: values.until === undefined ? undefined : parseTimeOption('until', values.until, now),
    limit,
  };
  if (checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, env);
  if (query.server !== undefined && !config.servers.some((s) => s.name === query.server)) {
    throw new UsageError(`no server "${query.server}" in the configuration; servers are: ${config.servers.map((s) => s.name).join(', ')}`);
  }
  const print = (events: AuditEvent[]) => {
    if (values.json) {
      for (const e of events) stdout.write(`${JSON.stringify(e)}\n`);
    } else if (events.length === 0) {
      stdout.write('no recorded decisions match\n');
    } else {
      stdout.write(`${formatTable(events)}\n`);
    }
  };
  if (config.storage.postgres) {
    const storage = await openStorage(config);
    try {
      if (storage.audit.kind === 'postgres') print(await queryAuditEventsPostgres(storage.audit.db, query));
      return 0;
    } finally {
      await storage.close();
    }
  }
  const path = config.storage.sqlite.path;
  if (path !== ':memory:' && !existsSync(path)) {
    throw new Error(`no database at ${path} yet, so no decisions are recorded: start the gateway first (mcp-warden start)`);
  }
  const db = openDatabase(path);
  try {
    print(queryAuditEvents(db, query));
    return 0;
  } finally {
    db.close();
  }
};
