/**
 * The macOS backend cannot run on Linux CI, so its command construction is checked here: the
 * secret only ever on stdin (`security -i`), never on argv, and values outside a safe alphabet refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMacosKeychain, macosDeleteCommand, macosGetCommand, macosSetCommand } from '../../src/client/keychain/macos.ts';
import { isClientError } from '../../src/client/errors.ts';

describe('macOS keychain backend (command construction)', () => {
  const secret = 'q0H1u8fJ2mXW3w7oYb5r9sT4nV6kL8pZ1aC3eG5iK7M';

  it('set: `security -i` with add-generic-password -U on stdin; the secret is not on argv', () => {
    const cmd = macosSetCommand('token-store-key-0123456789abcdef', secret);
    assert.deepEqual(cmd.args, ['-i']);
    assert.equal(cmd.stdin, `add-generic-password -U -s mcp-warden -a token-store-key-0123456789abcdef -w ${secret}\n`);
    assert.equal(cmd.args.join(' ').includes(secret), false);
  });

  it('get and delete name the service and account only; -w prints the secret on stdout', () => {
    assert.deepEqual(macosGetCommand('acct').args, ['find-generic-password', '-s', 'mcp-warden', '-a', 'acct', '-w']);
    assert.equal(macosGetCommand('acct').stdin, undefined);
    assert.deepEqual(macosDeleteCommand('acct').args, ['delete-generic-password', '-s', 'mcp-warden', '-a', 'acct']);
  });

  it('refuses values the interactive parser would split or interpret (spaces, quotes, newlines)', () => {
    for (const bad of ['a b', 'a"b', "a'b", 'a\nquit', '']) {
      assert.throws(() => macosSetCommand('acct', bad), (err) => isClientError(err, 'usage'));
      assert.throws(() => macosGetCommand(bad), (err) => isClientError(err, 'usage'));
    }
  });

  it('runs the commands it builds: a stand-in `security` sees the secret on stdin only; exit 44 is "no such item"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-macos-'));
    try {
      // A stand-in that keeps one item in a file: enough to check what the backend sends and how it reads answers.
      const fake = join(dir, 'security');
      const log = join(dir, 'argv.log');
      const item = join(dir, 'item');
      writeFileSync(
        fake,
        `#!/bin/sh
echo "$*" >> ${log}
case "$1" in
  -i) read -r cmd; set -- $cmd; shift 7; printf '%s\\n' "$1" > ${item} ;;
  find-generic-password) [ -f ${item} ] || exit 44; cat ${item} ;;
  delete-generic-password) [ -f ${item} ] || exit 44; rm ${item} ;;
esac
`,
      );
      chmodSync(fake, 0o755);
      const keychain = createMacosKeychain({ env: { PATH: process.env.PATH }, timeoutMs: 5000, command: fake });
      assert.equal(await keychain.get('acct'), undefined);
      await keychain.set('acct', secret, 'label');
      assert.equal(await keychain.get('acct'), secret);
      assert.equal(await keychain.delete('acct'), true);
      assert.equal(await keychain.delete('acct'), false);
      const { readFileSync } = await import('node:fs');
      assert.equal(readFileSync(log, 'utf8').includes(secret), false, 'the secret never reached argv');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
