/** `mcp-warden --version`: the package version on stdout, exit 0, so a user can say what they run. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.ts';

describe('mcp-warden --version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

  for (const flag of ['--version', '-v', 'version']) {
    it(`${flag} prints "mcp-warden <package.json version>" on stdout and exits 0`, async () => {
      const { code, out, err } = await runCli([flag]);
      assert.equal(code, 0, err);
      assert.equal(out, `mcp-warden ${version}\n`);
      assert.equal(err, '');
    });
  }
});
