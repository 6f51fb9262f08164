import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { runCli } from '../helpers/cli.ts';

const cli = runCli;

describe('keys rotate: a key stays published until the longest-lived token it signed has expired (RFC 7517 §5)', () => {
  let dir: string;
  let configFile: string;
  const EMBEDDED_TTL = 900;
  const EXCHANGE_TTL = 3600;
  const CHECK = 60;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-retire-ttl-'));
    configFile = join(dir, 'c.json');
    writeFileSync(configFile, JSON.stringify({
      publicUrl: 'http://127.0.0.1:9',
      storage: { sqlite: { path: join(dir, 'warden.db') } },
      authorizationServer: {
        embedded: {
          accessTokenTtlSeconds: EMBEDDED_TTL, signingKeyCheckSeconds: CHECK,
          tokenExchange: {
            gatewayClient: { clientId: 'g', clientSecret: 'retire-ttl-gateway-secret-0123456789abcdef' },
            audiences: [{ audience: 'https://short.example.test', accessTokenTtlSeconds: 60 }, { audience: 'https://long.example.test', accessTokenTtlSeconds: EXCHANGE_TTL }],
          },
        },
      },
      log: { level: 'silent' },
      servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER } }],
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('RFC 8693 audience TTL 3600 s, embedded 900 s: the key two rotations back stays published for 3600 s + check interval + 60 s skew after its successor was added', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await cli(['keys', 'rotate', '--config', configFile])).code, 0);
    const { out } = await cli(['keys', 'rotate', '--config', configFile]);
    // Four keys, newest first: the oldest two are beyond the newest two but may still have valid tokens.
    const list = (await cli(['keys', 'list', '--json', '--config', configFile])).out.trim().split('\n').map((l) => JSON.parse(l) as { kid: string; state: string; createdAt: string });
    assert.equal(list.length, 4);
    assert.deepEqual(list.map((k) => k.state), ['signing', 'published', 'published', 'published'], 'nothing retired yet');
    const until = /still published ([\w-]+): tokens it signed may be valid until (\S+);/.exec(out.split('\n').find((l) => l.includes(list[2]!.kid)) ?? '');
    assert.ok(until, out);
    // list[2] stopped signing when list[1] was added: it may go only after the longest token lifetime.
    const keptMs = Date.parse(until[2]!) - Date.parse(list[1]!.createdAt);
    assert.ok(keptMs >= (EXCHANGE_TTL + CHECK + 60) * 1000, `kept ${keptMs / 1000} s after its successor, not for the exchange audience's TTL`);
  });
});
