/**
 * The freedesktop Secret Service (GNOME Keyring, KWallet) through `secret-tool` from libsecret
 * (Debian package `libsecret-tools`). Items carry the attributes `service=mcp-warden account=<name>`.
 * `secret-tool store` reads the secret from stdin when stdin is not a terminal, so it never
 * appears on a command line. `lookup` and `clear` exit 1 with an empty stderr when there is no
 * such item, and with a message on stderr when the service cannot be reached.
 * @see https://specifications.freedesktop.org/secret-service/
 */
import { ClientError } from '../errors.ts';
import { firstLine, runTool } from './run-tool.ts';
import { KEYCHAIN_SERVICE, type Keychain } from './types.ts';

export interface SecretServiceOptions {
  /** The `secret-tool` executable (found on PATH by detect.ts). */
  command: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

export function createSecretServiceKeychain(options: SecretServiceOptions): Keychain {
  const run = (args: string[], stdin?: string) =>
    runTool(options.command, args, { env: options.env, timeoutMs: options.timeoutMs, ...(stdin !== undefined && { stdin }) });
  const attributes = (account: string) => ['service', KEYCHAIN_SERVICE, 'account', account];
  const fail = (action: string, stderr: string) =>
    new ClientError('keychain_unavailable', `the Secret Service could not ${action}: ${firstLine(stderr)}`);

  return {
    name: 'secret-service',
    async get(account) {
      const { code, stdout, stderr } = await run(['lookup', ...attributes(account)]);
      if (code === 0) return stdout;
      if (code === 1 && stderr.trim() === '') return undefined;
      throw fail('look up a secret', stderr);
    },
    async set(account, secret, label) {
      const { code, stderr } = await run(['store', `--label=${label}`, ...attributes(account)], secret);
      if (code !== 0) throw fail('store a secret', stderr);
    },
    async delete(account) {
      const { code, stderr } = await run(['clear', ...attributes(account)]);
      if (code === 0) return true;
      if (code === 1 && stderr.trim() === '') return false;
      throw fail('delete a secret', stderr);
    },
  };
}
