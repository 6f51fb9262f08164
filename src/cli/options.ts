/**
 * Command-line parsing shared by every command: node:util parseArgs with its errors turned
 * into a UsageError, which main.ts prints as one line and exits 2 for.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in how a command was called: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a command's options with node:util parseArgs, turning its errors into a usage error. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals = true,
  // Named, not inferred: the published declarations (dist/*.d.ts) cannot name node:util's internal option type.
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
