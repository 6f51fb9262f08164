// better-sqlite3 12 built for the Node.js that runs `npm test`, for the test of the driver's
// fallback (test/storage/sqlite-driver.test.ts). On Node 22 and 23 (Node-API 10, before 24) the
// store loads 13 and falls back to 12 when 13's addon does not load (src/storage/sqlite/driver.ts;
// scripts/pack-lib.mjs repeats the rule, as this plain-JavaScript file cannot import it). The 12
// that `npm install` built is for the Node that ran the install (Node 20 in CI), so this builds a
// copy for this Node as 12's own install script does (`node-gyp rebuild --release`), once per Node
// version, into node_modules/.cache, renamed into place whole. Run by scripts/test.mjs before the
// tests, outside their timeouts: compiling SQLite takes about a minute on a 2-core machine.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../node_modules/.cache/mcp-warden-tests/', import.meta.url));

/** Whether this Node falls back to 12 when 13 does not load (src/storage/sqlite/driver.ts SQLITE_DRIVERS). */
export function fallsBackToLegacyDriver() {
  return Number(process.versions.napi) >= 10 && Number(process.versions.node.split('.')[0]) < 24;
}

/** Where the copy of better-sqlite3 12 built for this Node lives. */
export function legacySqliteDriverDir() {
  return join(ROOT, `better-sqlite3-12-node-${process.versions.node}-${process.platform}-${process.arch}`);
}

/** Whether `dir`'s include/node/node_version.h names this very Node version. */
function holdsThisNodesHeaders(dir) {
  const header = join(dir, 'include', 'node', 'node_version.h');
  if (!existsSync(header)) return false;
  const text = readFileSync(header, 'utf8');
  const defined = (name) => new RegExp(`#define ${name} (\\d+)`).exec(text)?.[1];
  return [defined('NODE_MAJOR_VERSION'), defined('NODE_MINOR_VERSION'), defined('NODE_PATCH_VERSION')].join('.') === process.versions.node;
}

/**
 * This Node's headers for node-gyp's --nodedir: beside its binary (a release tarball, a version
 * manager's copy), the distribution's /usr, or else from the npm registry's platform package of
 * the npm package `node` (`npx -p node@22` keeps only the binary of it), whose include/ is
 * unpacked into the cache. No download from nodejs.org, which node-gyp would otherwise try.
 */
function nodeHeaders(npmCli, env, log) {
  const platformPackage = `node-${process.platform}-${process.arch}`;
  const fetched = join(ROOT, `${platformPackage}-${process.versions.node}`);
  const local = [join(dirname(realpathSync(process.execPath)), '..'), '/usr', join(fetched, 'package')].find(holdsThisNodesHeaders);
  if (local) return local;
  mkdirSync(fetched, { recursive: true });
  log(`npm test: fetching Node.js ${process.versions.node}'s headers (npm pack ${platformPackage}@${process.versions.node})`);
  const pack = spawnSync(process.execPath, [npmCli, 'pack', `${platformPackage}@${process.versions.node}`, '--pack-destination', fetched], { cwd: fetched, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (pack.status !== 0) throw new Error(`npm pack ${platformPackage}@${process.versions.node} failed: ${pack.stderr.slice(-1000)}`);
  const tarball = pack.stdout.trim().split('\n').pop();
  const untar = spawnSync('tar', ['-xzf', join(fetched, tarball), '-C', fetched, 'package/include/node'], { encoding: 'utf8' });
  rmSync(join(fetched, tarball), { force: true });
  if (untar.status !== 0 || !holdsThisNodesHeaders(join(fetched, 'package'))) throw new Error(`${platformPackage}@${process.versions.node} gave no headers for this Node: ${untar.stderr}`);
  return join(fetched, 'package');
}

/**
 * Builds the copy when this Node falls back to 12 and it is not there yet. Returns true when there
 * is nothing to do or the build succeeded; otherwise prints why and returns false.
 */
export function ensureLegacySqliteDriver({ env = process.env, log = console.error } = {}) {
  if (!fallsBackToLegacyDriver()) return true;
  const target = legacySqliteDriverDir();
  if (existsSync(join(target, 'build', 'Release', 'better_sqlite3.node'))) return true;
  const npmCli = env.npm_execpath;
  if (!npmCli || !existsSync(npmCli)) {
    log('npm test: run the tests through npm (npm test): building better-sqlite3 12 for this Node needs npm\'s node-gyp');
    return false;
  }
  // npm hands its scripts `npm_config_nodedir` (an npmrc may name /usr, another Node's headers).
  const buildEnv = Object.fromEntries(Object.entries(env).filter(([name]) => name.toLowerCase() !== 'npm_config_nodedir'));
  const building = `${target}.${process.pid}`;
  try {
    const nodedir = nodeHeaders(npmCli, buildEnv, log);
    const installed = dirname(createRequire(import.meta.url).resolve('better-sqlite3-12/package.json'));
    rmSync(building, { recursive: true, force: true });
    cpSync(installed, building, { recursive: true, filter: (source) => source !== join(installed, 'build') });
    const nodeGyp = env.npm_config_node_gyp && existsSync(env.npm_config_node_gyp) ? env.npm_config_node_gyp : join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    log(`npm test: building better-sqlite3 12 for Node.js ${process.versions.node} (the store's fallback on this Node; about a minute, once)`);
    const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--nodedir=${nodedir}`, '--jobs=2'], { cwd: building, env: buildEnv, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`node-gyp rebuild failed: ${(r.stderr || r.stdout).slice(-2000)}`);
    rmSync(target, { recursive: true, force: true });
    renameSync(building, target);
    return true;
  } catch (err) {
    rmSync(building, { recursive: true, force: true });
    log(`npm test: could not build better-sqlite3 12 for Node.js ${process.versions.node} (needs python3, make and a C++ compiler): ${err.message}`);
    return false;
  }
}
