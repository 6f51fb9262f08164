/**
 * Which keychain this machine has: macOS `security`, or `secret-tool` on PATH elsewhere (Linux,
 * the BSDs). A tool on disk is not enough: a headless box has `secret-tool` but no D-Bus session
 * or no unlocked keyring, so `probeKeychain` does a store → lookup → clear round trip, with a
 * deadline on every spawn, before `auto` trusts it.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createMacosKeychain, SECURITY_PATH } from './macos.ts';
import { createSecretServiceKeychain } from './secret-service.ts';
import type { Keychain } from './types.ts';

export interface DetectOptions {
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** Deadline of each keychain tool run (default 5 s). */
  timeoutMs?: number;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `name` on the env's PATH, as a shell would find it. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The keychain backend for this platform, or a reason there is none (Windows, no tool installed). */
export function findKeychain(options: DetectOptions): { keychain: Keychain } | { reason: string } {
  const platform = options.platform ?? process.platform;
  const timeoutMs = options.timeoutMs ?? 5000;
  if (platform === 'darwin') {
    if (!isExecutable(SECURITY_PATH)) return { reason: `${SECURITY_PATH} is missing` };
    return { keychain: createMacosKeychain({ env: options.env, timeoutMs }) };
  }
  if (platform === 'win32') return { reason: 'the Windows credential store is not supported yet' };
  const command = findOnPath('secret-tool', options.env);
  if (!command) return { reason: 'secret-tool is not installed (Debian/Ubuntu: libsecret-tools)' };
  return { keychain: createSecretServiceKeychain({ command, env: options.env, timeoutMs }) };
}

/** Stores, reads back and clears a random probe item; the failure's message when any step fails. */
export async function probeKeychain(keychain: Keychain): Promise<{ ok: true } | { ok: false; reason: string }> {
  const account = `probe-${randomBytes(6).toString('hex')}`;
  const value = randomBytes(12).toString('base64url');
  let stored = false;
  try {
    await keychain.set(account, value, 'mcp-warden keychain probe');
    stored = true;
    const back = await keychain.get(account);
    await keychain.delete(account);
    stored = false;
    return back === value ? { ok: true } : { ok: false, reason: `${keychain.name} did not return what was stored` };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  } finally {
    // A probe that failed after storing its item clears it, so no stray item is left behind;
    // best effort, the probe's own failure is what the caller reports.
    if (stored) await keychain.delete(account).catch(() => false);
  }
}
