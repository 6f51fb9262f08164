/**
 * The `audit` block of the configuration (composed into src/config/schema.ts): where decision
 * events go, how long they are kept, and how floods of unauthenticated requests are folded.
 */
import { z } from 'zod';

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90d`, `12h`, `30m`, `45s` as milliseconds; `undefined` when the text is not such a duration. */
export function parseDurationMs(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/**
 * Default retention: keep every event. Deleting is opt-in, so an upgrade never removes what an
 * older version stored without being asked to (docs/policy.md#retention).
 */
export const DEFAULT_RETENTION = 'forever';
/** What docs/configuration.md recommends (and the demo sets): 90 days, long enough for a quarterly access review. */
export const RECOMMENDED_RETENTION = '90d';

/**
 * A retention period: a number of days or a duration string (`90d`, `36h`); `0` (or `forever`)
 * keeps every event. Parsed to milliseconds, 0 meaning "keep forever".
 */
const retention = z
  .union([z.number().int('a whole number of days').min(0), z.string()])
  .transform((value, ctx) => {
    if (typeof value === 'number') return value * UNIT_MS.d;
    if (value === 'forever' || value === '0') return 0;
    const ms = parseDurationMs(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a retention period: give days (90), a duration (90d, 36h) or 0 / forever to keep every event` });
      return z.NEVER;
    }
    return ms;
  });

export const auditSchema = z
  .strictObject({
    /** A JSON Lines file that receives every decision event. */
    jsonl: z.string().optional(),
    /**
     * Rotate the JSON Lines file when it reaches this many bytes (renamed to `<file>.<UTC time>`,
     * jsonl-sink.ts). Default 0, off: rotation deletes old files, so it is opt-in, and an upgrade
     * never touches a deployment's existing logrotate archives.
     */
    jsonlMaxBytes: z.number().int().min(0).default(0),
    /** How many rotated JSON Lines files (of those the sink made) to keep besides the live one. */
    jsonlKeep: z.number().int().min(1).max(1000).default(5),
    /**
     * Where SQLite inserts run: `worker` (a worker thread with its own connection, off the event
     * loop) or `inline` (on the event loop, batched on a timer). An in-memory database is always inline.
     */
    writer: z.enum(['worker', 'inline']).default('worker'),
    /** Record tool arguments verbatim instead of redacted. */
    includeArguments: z.boolean().default(false),
    /** How long SQLite keeps decision events, in milliseconds after parsing; 0 keeps them forever. */
    retention: retention.prefault(DEFAULT_RETENTION),
    /**
     * Requests without a valid token are folded per (server, reason, remote address) over this
     * many seconds: the first is recorded at once, the rest as one event with a `count`.
     * 0 records every one.
     */
    unauthenticatedWindowSeconds: z.number().int().min(0).max(86_400).default(60),
  })
  .prefault({});

export type AuditConfig = z.infer<typeof auditSchema>;
