/**
 * What `connect` sends without loading the full client: the stored token while it is a usable
 * Bearer token, and nothing otherwise (then session.ts refreshes, signs in or proves possession).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeferredWarden } from '../../src/client/deferred-warden.ts';
import { TokenStore, type StoredTokens } from '../../src/client/token-store.ts';

const SERVER = 'https://mcp.example.com/mcp';
const NOW = 1_800_000_000_000;

describe('the deferred client of connect', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function withStored(tokens: StoredTokens | undefined, extra: { dpop?: boolean } = {}) {
    const home = mkdtempSync(join(tmpdir(), 'warden-deferred-'));
    dirs.push(home);
    if (tokens) {
      await new TokenStore(home, {}, { mode: 'file', env: {} }).update(SERVER, (record) => {
        record.tokens = tokens;
      });
    }
    return createDeferredWarden({ serverUrl: SERVER, home, tokenStore: 'file', env: {}, now: () => NOW, ...extra });
  }

  it('RFC 6750 §2.1: a stored Bearer token that is not about to expire is sent as it is', async () => {
    const warden = await withStored({ access_token: 'at-1', token_type: 'Bearer', expires_at: NOW + 3_600_000 });
    assert.equal(await warden.storedBearerToken!(), 'at-1');
    assert.equal(warden.serverUrl, SERVER);
  });

  it('RFC 6749 §6: a token expiring within the refresh skew (60 s) is left to the full client, which refreshes it', async () => {
    const warden = await withStored({ access_token: 'at-2', token_type: 'Bearer', refresh_token: 'rt', expires_at: NOW + 30_000 });
    assert.equal(await warden.storedBearerToken!(), undefined);
  });

  it('RFC 9449 §7.1: a DPoP-bound token, or DPoP asked for, is left to the full client (a proof per request)', async () => {
    assert.equal(await (await withStored({ access_token: 'at-3', token_type: 'DPoP', expires_at: NOW + 3_600_000 })).storedBearerToken!(), undefined);
    assert.equal(await (await withStored({ access_token: 'at-4', token_type: 'Bearer', expires_at: NOW + 3_600_000 }, { dpop: true })).storedBearerToken!(), undefined);
  });

  it('MCP 2025-11-25 Authorization: with no stored token the full client decides (it reads the 401 and signs in)', async () => {
    assert.equal(await (await withStored(undefined)).storedBearerToken!(), undefined);
  });
});
