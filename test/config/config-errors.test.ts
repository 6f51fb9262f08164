import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfig, substituteEnv } from '../../src/config/load.ts';
import { AccountConfigError } from '../../src/account/settings.ts';
import { DownstreamConfigError } from '../../src/downstream/index.ts';

const base = (upstream: unknown, authorizationServer?: unknown) => ({
  publicUrl: 'https://mcp.example.com',
  ...(authorizationServer === undefined ? {} : { authorizationServer }),
  servers: [{ name: 'notes', path: '/mcp', upstream }],
});

function messageOf(document: unknown): string {
  try {
    parseConfig(document);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err.message;
  }
  assert.fail('the configuration was accepted');
}

describe('configuration errors name the key path and the expected type', () => {
  it('a stdio upstream without command is reported at servers.0.upstream.stdio.command, not as "either … or …"', () => {
    const message = messageOf(base({ stdio: { args: ['server.js'] } }));
    assert.match(message, /servers\.0\.upstream\.stdio\.command is missing: expected a string/);
    assert.doesNotMatch(message, /must be either/);
  });

  it('args given as a string is reported as servers.0.upstream.stdio.args expecting a list', () => {
    const message = messageOf(base({ stdio: { command: 'node', args: 'server.js --port 1' } }));
    assert.match(message, /servers\.0\.upstream\.stdio\.args is "server\.js --port 1": expected a list/);
    assert.doesNotMatch(message, /must be either/);
  });

  it('a misspelt branch key gets a did-you-mean: embeded → embedded, stdoi → stdio', () => {
    assert.match(messageOf(base({ stdio: { command: 'true' } }, { embeded: {} })), /authorizationServer\.embeded: unknown key "embeded"; did you mean "embedded"\?/);
    assert.match(messageOf(base({ stdoi: { command: 'true' } })), /servers\.0\.upstream\.stdoi: unknown key "stdoi"; did you mean "stdio"\?/);
  });

  it('an unknown key anywhere gets a did-you-mean from the keys the schema accepts there', () => {
    assert.match(messageOf(base({ stdio: { comand: 'true' } })), /servers\.0\.upstream\.stdio\.comand: unknown key "comand"; did you mean "command"\?/);
    assert.match(messageOf({ ...base({ stdio: { command: 'true' } }), lisen: { port: 1 } }), /lisen: unknown key "lisen"; did you mean "listen"\?/);
    assert.match(messageOf(base({ http: { url: 'https://up.example/mcp', header: {} } })), /servers\.0\.upstream\.http\.header: unknown key "header"; did you mean "headers"\?/);
    assert.match(messageOf(base({ stdio: { command: 'true', zzzzzz: 1 } })), /servers\.0\.upstream\.stdio: unknown key "zzzzzz"\. Remove it/);
  });

  it('both branch keys at once asks for exactly one', () => {
    assert.match(messageOf(base({ stdio: { command: 'true' }, http: { url: 'https://up.example/mcp' } })), /servers\.0\.upstream has "stdio" and "http": give exactly one of them/);
  });

  it('an external issuer that is not a URL is reported inside the external branch', () => {
    assert.match(messageOf(base({ stdio: { command: 'true' } }, { external: { issuer: 42 } })), /authorizationServer\.external\.issuer is 42/);
  });

  it('every start-up configuration error is one ConfigError class with a code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
    try {
      assert.throws(() => loadConfigFile(join(dir, 'absent.yaml')), (e: unknown) => e instanceof ConfigError && e.code === 'unreadable_file');
      writeFileSync(join(dir, 'bad.json'), '{');
      assert.throws(() => loadConfigFile(join(dir, 'bad.json')), (e: unknown) => e instanceof ConfigError && e.code === 'syntax');
      assert.throws(() => substituteEnv({ a: '${NOPE}' }, {}), (e: unknown) => e instanceof ConfigError && e.code === 'unset_variable' && /a: environment variable NOPE/.test(e.message));
      assert.throws(() => parseConfig(base('x')), (e: unknown) => e instanceof ConfigError && e.code === 'invalid_value');
      const twice = { publicUrl: 'https://mcp.example.com', servers: [{ name: 'a', path: '/mcp', upstream: { stdio: { command: 'true' } } }, { name: 'b', path: '/mcp', upstream: { stdio: { command: 'true' } } }] };
      assert.throws(() => parseConfig(twice), (e: unknown) => e instanceof ConfigError && e.code === 'conflicting_settings' && /servers\.1\.path/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // The account and downstream configuration errors are the same class.
    assert.equal(AccountConfigError, ConfigError);
    assert.equal(DownstreamConfigError, ConfigError);
  });
});
