/**
 * `--config FILE` or `--demo`: the one way every operator command (start, users, clients, keys,
 * consents, audit, explain, secrets) turns its options into a validated Config.
 *
 * With `--demo`, `start` creates its database where the demo keeps it (`WARDEN_DB`, else
 * `./data/warden.db`). An admin command must work on that same database, never on a new empty
 * one (an empty one would answer "no users" and look like data loss), so it looks where `start
 * --demo` would have put it: `WARDEN_DB`; else `./data/warden.db` in this folder; else the
 * package's own `data/warden.db`, which is where `npm start` (run in the package folder) keeps it.
 * Finding none, it refuses and names every path it looked at.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDemoConfig } from '../config/demo.ts';
import { loadConfigFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { UsageError } from './options.ts';

/** Where `npm start` keeps the demo database: `data/warden.db` in the package folder. */
export const PACKAGE_DEMO_DB = fileURLToPath(new URL('../../data/warden.db', import.meta.url));

/**
 * The database an admin command with `--demo` uses: the first that exists of `WARDEN_DB`,
 * `./data/warden.db` (relative to `cwd`) and the package's `data/warden.db`.
 */
export function findDemoDatabase(env: NodeJS.ProcessEnv, cwd = process.cwd(), packageDb = PACKAGE_DEMO_DB): string {
  if (env.WARDEN_DB) {
    const path = resolve(cwd, env.WARDEN_DB);
    if (existsSync(path)) return path;
    throw new UsageError(`no demo database at ${path} (from WARDEN_DB); start the demo first (mcp-warden start --demo with the same WARDEN_DB), or point WARDEN_DB at its database`);
  }
  const candidates = [...new Set([resolve(cwd, 'data/warden.db'), packageDb])];
  const found = candidates.find((path) => existsSync(path));
  if (found) return found;
  throw new UsageError(`no demo database found (looked at ${candidates.join(' and ')}); start the demo first (npm start, or mcp-warden start --demo in the folder you run this from), or set WARDEN_DB to its path`);
}

/**
 * The Config of `--config FILE` or `--demo`. `create` (only `start`) lets `--demo` make a new
 * database; every other command needs the existing one (see the file comment).
 */
export function configFromOptions(
  values: { config?: string | undefined; demo?: boolean | undefined },
  env: NodeJS.ProcessEnv,
  options: { create?: boolean; cwd?: string } = {},
): Config {
  if (values.config && values.demo) throw new UsageError('give either --config FILE or --demo, not both');
  if (values.config) return loadConfigFile(values.config, env);
  if (values.demo) return options.create ? buildDemoConfig(env) : buildDemoConfig({ ...env, WARDEN_DB: findDemoDatabase(env, options.cwd) });
  throw new UsageError('say which configuration to read: --config FILE, or --demo for the npm start setup');
}
