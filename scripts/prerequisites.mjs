// The system programs `npm test` needs besides Node and npm, and how it gets them (scripts/test.mjs
// calls ensurePrerequisites before any test runs), so a fresh machine's `npm install && npm test`
// passes instead of failing half-way with "executable doesn't exist at /usr/bin/chromium":
// - as root where apt-get exists: install the missing Debian packages (apt-get update first),
//   saying what it provisions, as `npx playwright install --with-deps` does;
// - otherwise: one line naming what is missing and the exact command, and a failing exit.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian package → the programs the tests run from it, and which tests need them. */
export const PREREQUISITES = [
  { apt: 'chromium', programs: ['/usr/bin/chromium'], for: 'browser tests (playwright-core drives /usr/bin/chromium)' },
  { apt: 'libsecret-tools', programs: ['secret-tool'], for: 'keychain tests' },
  { apt: 'gnome-keyring', programs: ['gnome-keyring-daemon'], for: 'keychain tests' },
  { apt: 'dbus', programs: ['dbus-daemon', 'dbus-send'], for: 'keychain tests' },
  // Run directly by test/helpers/nginx.ts with a generated config (`daemon off`, paths in a temp
  // dir), never as the system service: the load balancer in front of several instances.
  { apt: 'nginx', programs: ['/usr/sbin/nginx'], for: 'scale-out tests (nginx in front of several instances)' },
];

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `program` is an absolute path, or a name looked up on `pathEnv` (PATH). */
function found(program, pathEnv) {
  if (program.startsWith('/')) return isExecutable(program);
  return (pathEnv ?? '').split(delimiter).some((dir) => dir && isExecutable(join(dir, program)));
}

/** The prerequisites with a program not found. */
export function missingPrerequisites(env = process.env) {
  return PREREQUISITES.filter((p) => !p.programs.every((program) => found(program, env.PATH)));
}

/** The exact command a person runs to install `missing`. */
export function installCommand(missing, isRoot) {
  const sudo = isRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${missing.map((p) => p.apt).join(' ')}`;
}

/**
 * Makes sure the prerequisites are there. Returns true when they are (already, or once
 * installed); otherwise prints one line saying what to run and returns false.
 */
export function ensurePrerequisites({ env = process.env, isRoot = process.getuid?.() === 0, log = console.error } = {}) {
  const missing = missingPrerequisites(env);
  if (missing.length === 0) return true;
  const what = missing.map((p) => `${p.apt} (${p.for})`).join(', ');
  if (!isRoot || !found('apt-get', env.PATH)) {
    log(`npm test: missing ${what}; install them with: ${installCommand(missing, isRoot)}`);
    return false;
  }
  log(`npm test: provisioning test prerequisites with apt-get: ${what}`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', ...missing.map((p) => p.apt)]]) {
    log(`npm test: apt-get ${args.join(' ')}`);
    const r = spawnSync('apt-get', args, { env: aptEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) {
      log(`npm test: apt-get ${args[0]} failed (${r.status ?? r.signal ?? r.error?.message}); install them with: ${installCommand(missing, true)}`);
      return false;
    }
  }
  const still = missingPrerequisites(env);
  if (still.length > 0) {
    log(`npm test: still missing after apt-get: ${still.flatMap((p) => p.programs).join(', ')}`);
    return false;
  }
  log(`npm test: installed ${missing.map((p) => p.apt).join(', ')}`);
  return true;
}
