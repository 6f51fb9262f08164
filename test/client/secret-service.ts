/**
 * A real freedesktop Secret Service for tests: a private D-Bus session bus and gnome-keyring-daemon
 * (unlocked with a password on stdin) in a temp HOME/XDG tree, both children of the test process,
 * stopped in `stop()`. Fails (never skips) when the Debian packages are missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from '../../src/client/keychain/detect.ts';
import { waitFor } from '../helpers/wait-for.ts';

export const SECRET_SERVICE_PACKAGES = 'libsecret-tools gnome-keyring dbus';

export interface SecretService {
  /** The environment the code under test gets: PATH, the temp HOME/XDG dirs, DBUS_SESSION_BUS_ADDRESS. */
  env: NodeJS.ProcessEnv;
  /** `secret-tool lookup service mcp-warden account <account>` through the same bus. */
  lookup(account: string): string | undefined;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startSecretService(): Promise<SecretService> {
  const missing = ['dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'].filter((tool) => !findOnPath(tool, process.env));
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not found: the keychain tests need the Debian packages ${SECRET_SERVICE_PACKAGES} (apt-get install -y ${SECRET_SERVICE_PACKAGES}; .ci/run installs them)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'warden-secret-service-'));
  const sub = (name: string) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    return path;
  };
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: sub('home'),
    XDG_RUNTIME_DIR: sub('run'),
    XDG_DATA_HOME: sub('data'),
    XDG_CONFIG_HOME: sub('config'),
    XDG_CACHE_HOME: sub('cache'),
    LANG: 'C.UTF-8',
  };
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const bus = spawn('dbus-daemon', ['--session', '--nofork', '--nopidfile', '--print-address=1'], { env: base, stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(bus);
    let address = '';
    bus.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      address += chunk;
    });
    await waitFor(() => address.includes('\n'), 'the session bus address');
    const env: NodeJS.ProcessEnv = { ...base, DBUS_SESSION_BUS_ADDRESS: address.trim() };
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(keyring);
    keyring.stdin!.end('secret-service test password');
    // Wait until our daemon owns the name, so no secret-tool call makes the bus activate another one.
    await waitFor(() => {
      const r = spawnSync('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets'], { env, encoding: 'utf8', timeout: 5000 });
      return /boolean true/.test(r.stdout ?? '');
    }, 'gnome-keyring-daemon on the session bus');
    return {
      env,
      lookup(account) {
        const r = spawnSync('secret-tool', ['lookup', 'service', 'mcp-warden', 'account', account], { env, encoding: 'utf8', timeout: 5000 });
        return r.status === 0 ? r.stdout : undefined;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
