/**
 * Two mcp-warden instances on one PostgreSQL database behind a request-level round-robin
 * balancer (no stickiness): every step of a real OAuth 2.1 sign-in (DCR, authorization request,
 * login, consent, code redemption, refresh) lands on whichever instance the balancer picks, and
 * works, because the authorization server's state, users, settings and audit live in PostgreSQL
 * (docs/storage.md) rather than in one process. The peers' most reported failure — "client_id
 * not found" or a refresh token valid only on the pod that issued it — cannot happen.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { queryAuditEventsPostgres } from '../../src/audit/postgres-sink.ts';
import { clientCredentialsToken, obtainTokens, refreshTokens } from '../helpers/oauth.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { roundRobin } from '../helpers/round-robin.ts';

const PASSWORD = 'correct horse battery staple';
const AGENT_SECRET = 'agent-secret-0123456789abcdefghij';

describe('two instances on one PostgreSQL database, behind a round-robin balancer', { skip: await postgresUnavailable() }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let lb: Awaited<ReturnType<typeof roundRobin>>;
  const wardens: Warden[] = [];
  let front: string;

  before(async () => {
    pg = await openTestPostgres();
    lb = await roundRobin(() => wardens.map((w) => w.port));
    front = `http://127.0.0.1:${lb.port}`;
    const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: AGENT_SECRET, WARDEN_PUBLIC_URL: front, PORT: '0' };
    const config = (port: number): Config => {
      const demo = buildDemoConfig(env);
      return parseConfig({
        ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })),
        listen: { host: '127.0.0.1', port },
        publicUrl: front,
        storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 4 } },
        servers: demo.servers,
      });
    };
    // One after the other, as a rolling deployment starts them; the second finds the first's keys and users.
    for (let i = 0; i < 2; i++) wardens.push(await startWarden(config, { env, announce: () => {} }));
  });

  after(async () => {
    for (const w of wardens) await w.close();
    lb?.server.close();
    await pg?.drop();
  });

  it('RFC 7591 + OAuth 2.1 §4.1: registration, login, consent and code redemption spread over both instances all succeed', async () => {
    const tokens = await obtainTokens({ issuer: front, resource: `${front}/mcp`, scope: 'notes:read', username: 'alice', password: PASSWORD });
    assert.ok(tokens.access_token);
    assert.ok(tokens.refresh_token);
    for (const w of wardens) assert.ok((lb.hits.get(w.port) ?? 0) >= 3, `instance on ${w.port} served part of the flow`);

    // RFC 6749 §6 / OAuth 2.1 §4.3.1: each refresh may land on either instance; rotation holds across them.
    let refresh = tokens.refresh_token!;
    for (let i = 0; i < 4; i++) {
      const r = await refreshTokens({ issuer: front, clientId: tokens.clientId, refreshToken: refresh, resource: `${front}/mcp` });
      assert.ok(r.refresh_token && r.refresh_token !== refresh);
      refresh = r.refresh_token;
    }

    // The access token from one instance is accepted by each instance's gateway (keys shared in PostgreSQL).
    for (const w of wardens) {
      const client = new Client({ name: 'postgres-instances-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${w.port}/mcp`), { authProvider: { token: async () => tokens.access_token } }));
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'list_notes'));
      await client.close();
    }
  });

  it('MCP client credentials: a pre-registered client seeded once works on both; both instances audit into one table', async () => {
    const t = await clientCredentialsToken({ issuer: front, clientSecret: AGENT_SECRET, resource: `${front}/mcp`, scope: 'notes:read' });
    for (const w of wardens) {
      const client = new Client({ name: 'agent', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${w.port}/mcp`), { authProvider: { token: async () => t.access_token } }));
      await client.listTools();
      await client.close();
      await w.flushAudit();
    }
    const events = await queryAuditEventsPostgres(pg, { subject: 'demo-agent', limit: 1000 });
    assert.ok(events.filter((e) => e.method === 'tools/list').length >= 2, 'tools/list decisions from both instances are in PostgreSQL');
    const { rows } = await pg.query<{ n: number }>('count_users', 'SELECT COUNT(*)::int AS n FROM users');
    assert.equal(rows[0]!.n, 2, 'the demo users were seeded once, not per instance');
  });
});
