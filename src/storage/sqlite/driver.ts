/**
 * Which better-sqlite3 this Node.js loads. Two majors are installed, and each runs only where it
 * is safe:
 *
 * - **13 (`better-sqlite3`) where Node-API 10 is (Node.js 22.14, 23.6 and later).** It is built on
 *   Node-API (node-addon-api, `NAPI_VERSION=10`) and ships prebuilt addons for eight platforms in
 *   the package. 12 and earlier derive `Database` and `Statement` from Node's own header-only
 *   `node::ObjectWrap`. Built against Node.js 24.19's or later headers, its destructor removes an
 *   environment cleanup hook and CHECKs that a Node.js context is current. V8 can finalize a
 *   statement when none is (a collection while an ES module's code runs, on the main thread or in
 *   a worker thread), and the process aborts with `Assertion failed: (env) != nullptr`.
 * - **12 (`better-sqlite3-12`, an npm alias, an optional dependency) where Node-API 10 is not**
 *   (Node 20, and 22 before 22.14): 13's addon does not run there (on Node 20 it crashes with a
 *   segmentation fault). 12 builds its addon at install, against that older Node's headers.
 *   It is also the fallback when 13's addon does not load (a platform it ships none for) on Node
 *   22 or 23, whose `node::ObjectWrap` has no such CHECK.
 *
 * Both have the same API, so the store's code and `@types/better-sqlite3` serve either. The
 * module loads on first use: a deployment on PostgreSQL never loads either.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../../config/errors.ts';

const require = createRequire(import.meta.url);

type Driver = 'better-sqlite3' | 'better-sqlite3-12';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** The packages to try, in order, on this Node.js (see above). */
export const SQLITE_DRIVERS: readonly Driver[] = Number(process.versions.napi) >= 10
  ? (NODE_MAJOR < 24 ? ['better-sqlite3', 'better-sqlite3-12'] : ['better-sqlite3'])
  : ['better-sqlite3-12'];

/** The package this Node.js loads when its addon is there: the first of SQLITE_DRIVERS. */
export const SQLITE_DRIVER: Driver = SQLITE_DRIVERS[0]!;

let loaded: typeof BetterSqlite3 | undefined;

/**
 * Loads `name` and its addon: both majors load the addon lazily, in the first `new Database()`,
 * so an in-memory database is opened and closed here to find out now. Literal `require`s, so a
 * bundler embedding mcp-warden sees both packages.
 */
function load(name: Driver): typeof BetterSqlite3 {
  const Database = (name === 'better-sqlite3' ? require('better-sqlite3') : require('better-sqlite3-12')) as typeof BetterSqlite3;
  new Database(':memory:').close();
  return Database;
}

/** What a loader's error says, in one line: the module or addon it did not find, or why the addon did not load. */
function reason(err: unknown): string {
  const message = (err as Error).message;
  // 12 finds its addon through the `bindings` package, whose message lists every path it tried.
  if (message.startsWith('Could not locate the bindings file')) return 'no build/Release/better_sqlite3.node: its install script did not run or failed';
  return message.split('\n')[0]!;
}

/** The way out of a store that did not load, for the drivers this Node.js tries. */
function remedy(): string {
  const platforms = 'better-sqlite3 13 ships prebuilt addons for Linux (glibc and musl), macOS and Windows on x64 and arm64';
  if (SQLITE_DRIVER === 'better-sqlite3-12') {
    return 'Reinstall mcp-warden with its optional dependencies and their install scripts (npm install, without --omit=optional or --ignore-scripts), or run it on Node.js 22.14 or later';
  }
  if (SQLITE_DRIVERS.includes('better-sqlite3-12')) {
    return `Reinstall mcp-warden (npm install); ${platforms}, and on other platforms the optional better-sqlite3-12 builds its own at install (needs its install scripts and a C++ toolchain)`;
  }
  return `Reinstall mcp-warden (npm install); ${platforms}. On another platform build it from source (npx node-gyp rebuild in node_modules/better-sqlite3) or run Node.js 22 or 23, where better-sqlite3-12 can build its own`;
}

/**
 * better-sqlite3's `Database` constructor for this Node.js; a ConfigError when none loads.
 * (test/storage/sqlite-driver.test.ts runs the fallback on Node 22 with a 12 built for it.)
 */
export function sqliteDriver(): typeof BetterSqlite3 {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const name of SQLITE_DRIVERS) {
    try {
      loaded = load(name);
      return loaded;
    } catch (err) {
      // Only the first line: the rest of a loader's message is a require stack or the paths tried.
      failures.push(`${name}: ${reason(err)}`);
    }
  }
  throw new ConfigError(
    `the embedded SQLite store did not load on Node.js ${process.versions.node} (${failures.join('; ')}). ${remedy()}, or keep the state in PostgreSQL (storage.postgres.url).`,
    'unavailable_feature',
  );
}
