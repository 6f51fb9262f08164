/** `--since`, `--until`, `--before`: an ISO 8601 time or an age, parsed for the audit commands. */
import { UsageError } from './options.ts';

const AGE = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** An ISO 8601 time or an age such as `1h`, as milliseconds since the epoch. */
export function parseTimeOption(option: string, value: string, now: number): number {
  const age = AGE.exec(value);
  if (age) return now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS];
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new UsageError(`--${option} "${value}" is neither an ISO 8601 time (2026-01-21T10:00:00Z) nor an age (90s, 15m, 1h, 2d)`);
  return ms;
}
