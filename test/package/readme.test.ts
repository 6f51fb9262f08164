/**
 * What the README tells a new user about installing and testing holds: the host snippets start
 * the light client package's `connect`, and CI runs exactly the test command the README gives.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced blocks of `lang` in `text`, in order. */
function blocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map((m) => m[1]!);
}

describe('README: install and test instructions', () => {
  it('the Claude Desktop, VS Code and Cursor snippets run `npx -y mcp-warden-client connect <url>`, a bin the light package has', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'packages/client/package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
    const hosts = blocks(README, 'json').map((b) => JSON.parse(b) as { mcpServers?: Record<string, { command: string; args: string[] }>; servers?: Record<string, { command: string; args: string[] }> });
    const launches = hosts.flatMap((h) => Object.values(h.mcpServers ?? h.servers ?? {}));
    assert.equal(launches.length, 3, 'three host snippets');
    for (const launch of launches) {
      assert.equal(launch.command, 'npx');
      assert.deepEqual(launch.args.slice(0, 3), ['-y', manifest.name, 'connect']);
      assert.match(launch.args[3]!, /^https:\/\//);
    }
    // `npx -y <package>` runs the package's bin of the same name.
    assert.ok(manifest.bin[manifest.name], `${manifest.name} has a bin named ${manifest.name}`);
  });

  it("the light package's own README gives the same host launch and only commands its bin has", () => {
    const readme = readFileSync(join(ROOT, 'packages/client/README.md'), 'utf8');
    const [snippet] = blocks(readme, 'json').map((b) => JSON.parse(b) as { mcpServers: Record<string, { command: string; args: string[] }> });
    assert.deepEqual(Object.values(snippet!.mcpServers)[0]!.args.slice(0, 3), ['-y', 'mcp-warden-client', 'connect']);
    const commands = [...blocks(readme, 'sh')[0]!.matchAll(/^npx -y mcp-warden-client (\S+) /gm)].map((m) => m[1]);
    assert.deepEqual([...new Set(commands)].sort(), ['call', 'connect', 'login', 'logout', 'token', 'tools']);
  });

  it('.ci/run runs exactly the Quick start test command, with no apt step of its own (npm test provisions)', () => {
    const quickStart = README.slice(README.indexOf('## Quick start'));
    const [first] = blocks(quickStart, 'sh');
    const testLine = first!.split('\n').find((l) => l.startsWith('npm test'));
    assert.ok(testLine, 'the Quick start names the test command');
    const command = testLine.split('#')[0]!.trim();
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    const lines = ci.split('\n').map((l) => l.trim());
    assert.ok(lines.includes(command), `.ci/run runs "${command}"`);
    assert.ok(!lines.some((l) => /^(DEBIAN_FRONTEND=\S+ )?apt-get install/.test(l)), 'no apt-get install in .ci/run');
  });

  it('the Development section states the test prerequisites and the command that installs them', () => {
    const development = README.slice(README.indexOf('## Development'));
    for (const name of ['chromium', 'secret-tool', 'gnome-keyring', 'dbus']) assert.match(development, new RegExp(name));
    assert.match(development, /sudo apt-get update && sudo apt-get install -y chromium libsecret-tools gnome-keyring dbus/);
  });
});
