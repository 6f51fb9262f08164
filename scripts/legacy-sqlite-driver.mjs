// better-sqlite3 12 built for the Node.js that runs `npm test`, for the test of the store's
// fallback to it (test/storage/sqlite-driver.test.ts). On Node 22 and 23 (Node-API 10, before 24)
// the store loads 13 and falls back to 12 when 13's addon does not load (src/storage/sqlite/
// driver.ts SQLITE_DRIVERS; this plain-JavaScript file cannot import it, so it repeats the rule,
// and the test checks the two agree). The 12 that `npm install` put in node_modules has an addon for
// the Node that ran the install (Node 20 in CI), so this builds a copy for this Node the way 12's
// install script does when no prebuilt addon is fetched (`node-gyp rebuild --release`), into
// node_modules/.cache, renamed into place whole. scripts/test.mjs runs it before the tests, outside
// their time limits: compiling SQLite takes about a minute on a 2-core machine, once per Node
// version and 12 version (CI's `npm ci` empties node_modules, so CI compiles on every run).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../node_modules/.cache/mcp-warden-tests/', import.meta.url));
const require = createRequire(import.meta.url);

/** Whether this Node falls back to 12 when 13 does not load (src/storage/sqlite/driver.ts SQLITE_DRIVERS). */
export function fallsBackToLegacyDriver() {
  return Number(process.versions.napi) >= 10 && Number(process.versions.node.split('.')[0]) < 24;
}

/** The installed better-sqlite3 12's folder and version, or undefined when it is not installed (--omit=optional). */
function installedLegacyDriver() {
  try {
    const manifest = require.resolve('better-sqlite3-12/package.json');
    return { dir: dirname(manifest), version: JSON.parse(readFileSync(manifest, 'utf8')).version };
  } catch {
    return undefined;
  }
}

/** Where the copy of better-sqlite3 12 built for this Node lives (named by this Node's and 12's versions). */
export function legacySqliteDriverDir() {
  const version = installedLegacyDriver()?.version ?? 'not-installed';
  return join(ROOT, `better-sqlite3-${version}-node-${process.versions.node}-${process.platform}-${process.arch}`);
}

/** Whether `dir`'s include/node/node_version.h names this very Node version. */
function holdsThisNodesHeaders(dir) {
  const header = join(dir, 'include', 'node', 'node_version.h');
  if (!existsSync(header)) return false;
  const text = readFileSync(header, 'utf8');
  const defined = (name) => new RegExp(`#define ${name} (\\d+)`).exec(text)?.[1];
  return [defined('NODE_MAJOR_VERSION'), defined('NODE_MINOR_VERSION'), defined('NODE_PATCH_VERSION')].join('.') === process.versions.node;
}

/** Whether process `pid` is alive (a folder named after a dead one is a leftover of an interrupted run). */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Removes `<base>.<pid>` folders of processes that are gone. */
function removeLeftovers(base) {
  const prefix = `${base.slice(ROOT.length)}.`;
  for (const name of existsSync(ROOT) ? readdirSync(ROOT) : []) {
    const pid = Number(name.slice(prefix.length));
    if (name.startsWith(prefix) && Number.isInteger(pid) && pid !== process.pid && !alive(pid)) rmSync(join(ROOT, name), { recursive: true, force: true });
  }
}

/** Renames `from` to `to` unless another process put a whole `to` there first (then `from` is dropped). */
function moveIntoPlace(from, to) {
  try {
    renameSync(from, to);
  } catch (err) {
    if (err.code !== 'EEXIST' && err.code !== 'ENOTEMPTY') throw err;
    rmSync(from, { recursive: true, force: true });
  }
}

/** What a failed child said: its error, or the end of its output. */
function failure(r) {
  return r.error?.message ?? `exit ${r.status ?? r.signal}: ${`${r.stderr ?? ''}${r.stdout ?? ''}`.slice(-2000)}`;
}

/**
 * This Node's headers for node-gyp's --nodedir, from what is on the machine: beside its binary (a
 * release tarball, a version manager's copy, the platform package `npx -p node@22` installs, when
 * npm has not pruned it), or the distribution's /usr; else from the npm registry's platform package
 * of the npm package `node` (no download from nodejs.org, which node-gyp would otherwise try),
 * unpacked beside the cache and renamed into place whole.
 */
function nodeHeaders(npmCli, env) {
  const platformPackage = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
  const prefix = join(dirname(realpathSync(process.execPath)), '..');
  const local = [prefix, join(prefix, 'node_modules', platformPackage), '/usr'].find(holdsThisNodesHeaders);
  if (local) return local;
  const fetched = join(ROOT, `${platformPackage}-${process.versions.node}`);
  if (holdsThisNodesHeaders(join(fetched, 'package'))) return join(fetched, 'package');
  removeLeftovers(fetched);
  const unpacking = `${fetched}.${process.pid}`;
  mkdirSync(unpacking, { recursive: true });
  try {
    const spec = `${platformPackage}@${process.versions.node}`;
    const pack = spawnSync(process.execPath, [npmCli, 'pack', spec, '--json', '--pack-destination', unpacking], { cwd: unpacking, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    if (pack.status !== 0) throw new Error(`npm pack ${spec} (Node.js's headers, from the npm registry) failed: ${failure(pack)}`);
    const tarball = join(unpacking, JSON.parse(pack.stdout)[0].filename);
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', unpacking, 'package/include/node'], { encoding: 'utf8' });
    rmSync(tarball, { force: true });
    if (untar.status !== 0 || !holdsThisNodesHeaders(join(unpacking, 'package'))) throw new Error(`${spec} gave no headers for this Node: ${failure(untar)}`);
    moveIntoPlace(unpacking, fetched);
  } finally {
    rmSync(unpacking, { recursive: true, force: true });
  }
  return join(fetched, 'package');
}

/**
 * Builds the copy when this Node falls back to 12 and it is not there yet. Returns undefined when
 * there is nothing to do or the build succeeded, else why it could not be built (the test then
 * fails with that reason; the other tests run).
 */
export function ensureLegacySqliteDriver({ env = process.env, log = console.error } = {}) {
  if (!fallsBackToLegacyDriver()) return undefined;
  const installed = installedLegacyDriver();
  if (!installed) return 'better-sqlite3-12 (an optional dependency) is not installed: npm install without --omit=optional';
  const target = legacySqliteDriverDir();
  if (existsSync(join(target, 'build', 'Release', 'better_sqlite3.node'))) return undefined;
  const npmCli = env.npm_execpath;
  if (!npmCli || !existsSync(npmCli) || !/npm-cli\.js$/.test(npmCli)) return 'run the tests with npm (npm test): the build uses npm\'s node-gyp';
  removeLeftovers(target);
  const building = `${target}.${process.pid}`;
  try {
    // npm hands its scripts its configuration as npm_config_* variables (an npmrc's nodedir may name
    // another Node's headers), and node-gyp takes every one of them as an option: none reach it.
    const gypEnv = Object.fromEntries(Object.entries(env).filter(([name]) => !name.toLowerCase().startsWith('npm_config_')));
    const headers = nodeHeaders(npmCli, env);
    rmSync(building, { recursive: true, force: true });
    cpSync(installed.dir, building, { recursive: true, filter: (source) => source !== join(installed.dir, 'build') });
    const nodeGyp = env.npm_config_node_gyp && existsSync(env.npm_config_node_gyp) ? env.npm_config_node_gyp : join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    log(`npm test: building better-sqlite3 ${installed.version} for Node.js ${process.versions.node}, the store's fallback on this Node (about a minute)`);
    const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--nodedir=${headers}`, '--jobs=2'], { cwd: building, env: gypEnv, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`node-gyp rebuild (needs python3, make and a C++ compiler) failed: ${failure(r)}`);
    // Fetched headers stay (another process may be compiling against them): the next 12 version reuses them.
    moveIntoPlace(building, target);
    return undefined;
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    const why = `could not build better-sqlite3 ${installed.version} for Node.js ${process.versions.node}: ${err.message}`;
    log(`npm test: ${why}`);
    return why;
  }
}
