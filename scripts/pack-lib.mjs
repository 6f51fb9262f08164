// Packing and installing the published packages the way a user gets them, shared by the pack
// smoke test (scripts/pack-smoke.mjs) and the client footprint benchmark (bench/client-footprint.ts).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Runs a command to completion; throws with its output when it fails. */
export function run(command, args, options = {}) {
  // `options.env` is the whole environment when given (a clean one, as a user's shell has).
  const r = spawnSync(command, args, { encoding: 'utf8', ...options, env: options.env ?? process.env });
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `npm pack` in `cwd` (of a workspace with `-w NAME` in `extraArgs`) into `destination`; the tarball's path. */
export function pack(cwd, destination, extraArgs = []) {
  const out = run('npm', ['pack', '--json', '--pack-destination', destination, ...extraArgs], { cwd });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  return join(destination, info.filename);
}

// better-sqlite3 13 ships its addons prebuilt in the package; 12 (installed as the alias
// better-sqlite3-12) builds one at install. A Node with Node-API 10 loads 13, one without loads 12
// (src/storage/sqlite/driver.ts), so only then is 12's addon needed.
const LEGACY = 'node_modules/better-sqlite3-12';
const ADDON = `${LEGACY}/build/Release/better_sqlite3.node`;
const LOADS_LEGACY = Number(process.versions.napi) < 10;

/**
 * Installs `tarball` into the new empty folder `folder`, as `npm install <tarball>` in a fresh
 * project does. With `nativeFrom` (a checkout whose node_modules holds a built better-sqlite3),
 * install scripts are skipped and, on a Node that loads better-sqlite3 12, that addon is copied in
 * instead of compiling SQLite again (minutes on CI); it must be the same 12.x, built for this Node.
 */
export function install(folder, tarball, { nativeFrom } = {}) {
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'package.json'), '{ "name": "install-probe", "private": true }\n');
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', ...(nativeFrom ? ['--ignore-scripts'] : []), tarball], { cwd: folder });
  const installed = join(folder, LEGACY, 'package.json');
  if (!nativeFrom || !LOADS_LEGACY || !statSync(installed, { throwIfNoEntry: false })) return;
  const want = JSON.parse(readFileSync(installed, 'utf8')).version;
  const have = JSON.parse(readFileSync(join(nativeFrom, LEGACY, 'package.json'), 'utf8')).version;
  if (want !== have) throw new Error(`better-sqlite3 ${want} installed but ${have} built in ${nativeFrom}: install with scripts instead`);
  mkdirSync(dirname(join(folder, ADDON)), { recursive: true });
  cpSync(join(nativeFrom, ADDON), join(folder, ADDON));
}

function filesUnder(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) filesUnder(path, out);
    else if (entry.isFile()) out.push({ path, size: statSync(path).size });
  }
  return out;
}

/**
 * What an install put in `folder/node_modules`: bytes (the sum of file sizes, as `du
 * --apparent-size` counts), packages (folders with a package.json directly under node_modules or a
 * scope) and native addons (`.node` files).
 */
export function footprint(folder) {
  const root = join(folder, 'node_modules');
  const files = filesUnder(root);
  const packages = readdirSync(root)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) => (name.startsWith('@') ? readdirSync(join(root, name)).map((sub) => `${name}/${sub}`) : [name]))
    .filter((name) => statSync(join(root, name, 'package.json'), { throwIfNoEntry: false }));
  return {
    bytes: files.reduce((n, f) => n + f.size, 0),
    packages,
    native: files.filter((f) => f.path.endsWith('.node')).map((f) => f.path.slice(root.length + 1)),
  };
}
