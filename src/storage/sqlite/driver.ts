/**
 * Which better-sqlite3 this Node.js loads. Two majors are installed, and each runs only where it
 * is safe:
 *
 * - **13 (`better-sqlite3`) on Node.js 22 and later.** It is written against Node-API
 *   (node-addon-api) and ships its prebuilt addons in the package. 12 and earlier derive
 *   `Database` and `Statement` from Node's own `node::ObjectWrap`, whose destructor, from Node.js
 *   24.19 on, removes an environment cleanup hook and CHECKs that an Environment is current; a
 *   Statement collected by a GC that runs outside one (an idle GC, a worker's teardown) aborts the
 *   whole process with `Assertion failed: (env) != nullptr`. 13 declares `engines.node >= 22`.
 * - **12 (`better-sqlite3-12`, an npm alias, an optional dependency) on Node.js 20.** 13 crashes
 *   there (a segmentation fault on its first statements), and Node 20's `node::ObjectWrap` has no
 *   such CHECK.
 *
 * Both have the same API, so the store's code and `@types/better-sqlite3` serve either. The
 * module loads on first use: a deployment on PostgreSQL never loads either.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../../config/errors.ts';

const require = createRequire(import.meta.url);

/** The package name this Node.js loads (see above). */
export const SQLITE_DRIVER = Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3' : 'better-sqlite3-12';

let loaded: typeof BetterSqlite3 | undefined;

/** better-sqlite3's `Database` constructor for this Node.js; a ConfigError when it does not load. */
export function sqliteDriver(): typeof BetterSqlite3 {
  if (loaded) return loaded;
  try {
    loaded = require(SQLITE_DRIVER) as typeof BetterSqlite3;
  } catch (err) {
    // The usual causes: an install with --omit=optional on Node 20, or a platform with no prebuilt
    // addon and no compiler. The loader's message names the file it looked for.
    const reason = (err as Error).message.split('\n')[0];
    throw new ConfigError(
      `the embedded SQLite store needs ${SQLITE_DRIVER} on Node.js ${process.versions.node}, and it did not load (${reason}). ` +
      'Reinstall mcp-warden with its optional dependencies (npm install), run it on Node.js 22 or later, or use PostgreSQL (storage.postgres.url).',
      'unavailable_feature',
    );
  }
  return loaded;
}
