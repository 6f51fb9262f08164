/**
 * The macOS login keychain through `/usr/bin/security`, generic-password items with service
 * `mcp-warden`. Not testable on Linux CI: the commands are built by pure functions (unit-tested)
 * and the runner is kept tiny.
 *
 * Why `security -i`: `add-generic-password … -w SECRET` would put the secret on argv (visible in
 * `ps`), and `-w` as the last option without a value prompts on the controlling tty, which a
 * background `connect` does not have. In interactive mode `security` reads commands from stdin,
 * so the secret travels through a pipe only. Its interactive line is limited (4096 bytes) and its
 * exit status does not reflect the command's, so `set` reads the item back to confirm. Every
 * interpolated value is checked against a conservative alphabet (our secrets are base64url data
 * keys), so no quoting rules of the interactive parser come into play.
 * Lookups use `find-generic-password -w` (the secret on stdout); exit 44 means no such item.
 */
import { ClientError } from '../errors.ts';
import { firstLine, runTool } from './run-tool.ts';
import { KEYCHAIN_SERVICE, type Keychain } from './types.ts';

export const SECURITY_PATH = '/usr/bin/security';
/** errSecItemNotFound as `security`'s exit status. */
const NOT_FOUND = 44;
const SAFE = /^[A-Za-z0-9._:=-]{1,1024}$/;

export interface SecurityCommand {
  args: string[];
  stdin?: string;
}

function safe(what: string, value: string): string {
  if (!SAFE.test(value)) throw new ClientError('usage', `a macOS keychain ${what} may only hold letters, digits and . _ : = -`);
  return value;
}

/** `security -i` with the add command on stdin (the secret never on argv). `-U` updates an existing item. */
export function macosSetCommand(account: string, secret: string): SecurityCommand {
  return { args: ['-i'], stdin: `add-generic-password -U -s ${KEYCHAIN_SERVICE} -a ${safe('account', account)} -w ${safe('secret', secret)}\n` };
}

export function macosGetCommand(account: string): SecurityCommand {
  return { args: ['find-generic-password', '-s', KEYCHAIN_SERVICE, '-a', safe('account', account), '-w'] };
}

export function macosDeleteCommand(account: string): SecurityCommand {
  return { args: ['delete-generic-password', '-s', KEYCHAIN_SERVICE, '-a', safe('account', account)] };
}

export function createMacosKeychain(options: { env: NodeJS.ProcessEnv; timeoutMs: number; command?: string }): Keychain {
  const run = ({ args, stdin }: SecurityCommand) =>
    runTool(options.command ?? SECURITY_PATH, args, { env: options.env, timeoutMs: options.timeoutMs, ...(stdin !== undefined && { stdin }) });
  const fail = (action: string, stderr: string) => new ClientError('keychain_unavailable', `the macOS keychain could not ${action}: ${firstLine(stderr)}`);

  const keychain: Keychain = {
    name: 'macos-keychain',
    async get(account) {
      const { code, stdout, stderr } = await run(macosGetCommand(account));
      if (code === 0) return stdout.replace(/\n$/, '');
      if (code === NOT_FOUND) return undefined;
      throw fail('look up a secret', stderr);
    },
    async set(account, secret) {
      // The label is left at its default (the service name): free text would need the interactive parser's quoting.
      const { stderr } = await run(macosSetCommand(account, secret));
      if ((await keychain.get(account)) !== secret) throw fail('store a secret', stderr);
    },
    async delete(account) {
      const { code, stderr } = await run(macosDeleteCommand(account));
      if (code === 0) return true;
      if (code === NOT_FOUND) return false;
      throw fail('delete a secret', stderr);
    },
  };
  return keychain;
}
