import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { SqliteAuditSink, type AuditEvent } from '../../src/audit/index.ts';

function capture() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, text: () => text };
}

async function run(...argv: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, env: {} });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const now = Date.now();
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();

describe('mcp-warden audit and explain: recorded decisions read back, and a decision explained without calling anything', () => {
  let dir: string;
  let configFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
    const dbPath = join(dir, 'warden.db');
    configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, `
publicUrl: https://mcp.example.com
storage: { sqlite: { path: ${JSON.stringify(dbPath)} } }
servers:
  - name: notes
    path: /mcp
    upstream: { http: { url: https://upstream.example.com/mcp } }
    scopes: [notes:read, notes:write]
    policy:
      mode: first-match
      default: deny
      rules:
        - { name: read-tools, tools: [list_notes, read_note], scopes: notes:read }
        - { name: admin-write-tools, tools: [create_note, delete_note], roles: admin, scopes: notes:write }
        - { name: files, tools: read_file, arguments: { path: { pathPrefix: /public } } }
        - { name: partner, tools: partner_tool, clientHosts: "*.partner.example" }
  - name: open
    path: /open
    upstream: { http: { url: https://upstream.example.com/open } }
`);
    const db = openDatabase(dbPath);
    const users = new UserStore(createSqliteUserRecords(db));
    await users.add('alice', 'alice-password', ['admin']);
    await users.add('bob', 'bob-password-1', ['member']);
    const sink = new SqliteAuditSink(db);
    const base: AuditEvent = { time: iso(0), subject: 'alice', clientId: 'https://app.example/client.json', roles: ['admin'], server: 'notes', method: 'tools/call', target: 'delete_note', decision: 'allow', rule: 'admin-write-tools', reason: 'allowed by rule "admin-write-tools"', latencyUs: 2 };
    sink.record({ ...base, time: iso(3 * 3600_000), target: 'create_note' });
    sink.record({ ...base, time: iso(60_000), subject: 'bob', roles: ['member'], clientId: 'cli', decision: 'deny', rule: null, reason: 'this tool requires a role you do not have' });
    sink.record({ ...base, time: iso(30_000), method: 'tools/list', target: null, rule: null, reason: 'tools/list is not subject to the policy' });
    await sink.close();
    db.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('audit prints a table of recorded decisions, newest first', async () => {
    const r = await run('audit', '--config', configFile);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME\s+DECISION\s+USER\s+CLIENT\s+SERVER\s+METHOD\s+TARGET\s+RULE\s+REASON$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, /allow\s+alice .*tools\/list/);
    assert.match(lines[2]!, /deny\s+bob\s+cli\s+notes\s+tools\/call\s+delete_note\s+-\s+this tool requires a role you do not have/);
  });

  it('audit filters by user, decision, client, server and time; --json prints JSON lines', async () => {
    const bob = await run('audit', '--config', configFile, '--user', 'bob', '--decision', 'deny', '--json');
    assert.equal(bob.code, 0, bob.stderr);
    const events = bob.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    assert.deepEqual(events.map((e) => [e.subject, e.decision, e.target]), [['bob', 'deny', 'delete_note']]);
    const recent = await run('audit', '--config', configFile, '--since', '1h', '--client', 'https://app.example/client.json', '--json');
    assert.deepEqual(recent.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditEvent).method), ['tools/list']);
    const old = await run('audit', '--config', configFile, '--until', iso(2 * 3600_000), '--server', 'notes', '--json');
    assert.deepEqual(old.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditEvent).target), ['create_note']);
    const none = await run('audit', '--config', configFile, '--user', 'nobody');
    assert.equal(none.stdout, 'no recorded decisions match\n');
  });

  it('audit rejects bad options with a usage error, not a stack', async () => {
    const bad = await run('audit', '--config', configFile, '--decision', 'maybe');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--decision is allow or deny/);
    const since = await run('audit', '--config', configFile, '--since', 'yesterday');
    assert.equal(since.code, 2);
    assert.match(since.stderr, /--since "yesterday" is neither an ISO 8601 time/);
    const server = await run('audit', '--config', configFile, '--server', 'nope');
    assert.match(server.stderr, /no server "nope"/);
    const neither = await run('audit');
    assert.match(neither.stderr, /--config FILE, or --demo/);
    assert.doesNotMatch(bad.stderr + since.stderr + server.stderr + neither.stderr, /\n\s+at /);
  });

  it('explain: bob may not delete_note; the reason names no rule, the trace shows the role condition', async () => {
    const r = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'delete_note');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /user:\s+bob, roles: member \(from the user store\)/);
    assert.match(r.stdout, /decision: DENY/);
    assert.match(r.stdout, /rule:\s+\(none: the policy default, deny\)/);
    assert.match(r.stdout, /reason:\s+this tool requires a role you do not have/);
    assert.match(r.stdout, /admin-write-tools\s+\(allow\)\s+does not apply: the user has none of its roles/);
    assert.doesNotMatch(r.stdout, /step-up/);
  });

  it('explain: alice may delete_note, by rule admin-write-tools', async () => {
    const r = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'alice', '--tool', 'delete_note');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /decision: ALLOW\nrule:\s+admin-write-tools\n/);
  });

  it('explain: alice with only notes:read gets the step-up scopes (MCP 2025-11-25 §Scope Challenge Handling)', async () => {
    const r = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'alice', '--scope', 'notes:read', '--tool', 'delete_note');
    assert.equal(r.code, 3);
    assert.match(r.stdout, /step-up:\s+403 insufficient_scope; a token with scope "notes:read notes:write" would be allowed/);
  });

  it('explain: arguments, client hosts, roles given for external users, and servers without a policy', async () => {
    const inside = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'read_file', '--args', '{"path":"/public/a.txt"}');
    assert.equal(inside.code, 0, inside.stdout);
    const outside = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'read_file', '--args', '{"path":"/etc/passwd"}');
    assert.equal(outside.code, 3);
    assert.match(outside.stdout, /files\s+\(allow\)\s+does not apply: one of its argument conditions does not hold/);
    const partner = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'eve', '--role', 'guest', '--client', 'https://app.partner.example/c.json', '--tool', 'partner_tool');
    assert.equal(partner.code, 0, partner.stdout);
    assert.match(partner.stdout, /roles: guest \(as given\)/);
    const open = await run('explain', '--config', configFile, '--server', 'open', '--user', 'bob', '--tool', 'anything');
    assert.equal(open.code, 0);
    assert.match(open.stdout, /the server has no policy/);
  });

  it('explain: an unknown user is said clearly; bad --args is a usage error', async () => {
    const r = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'mallory', '--tool', 'delete_note');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /user "mallory" is unknown: not in the built-in user store/);
    const bad = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'x', '--args', '{nope');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--args is not valid JSON/);
    const two = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'bob', '--tool', 'x', '--prompt', 'y');
    assert.match(two.stderr, /exactly one of --tool, --resource, --prompt or --method/);
  });

  it('explain: resources and prompts', async () => {
    const res = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'alice', '--resource', 'notes://note/1');
    assert.equal(res.code, 3);
    assert.match(res.stdout, /no rule names this resource/);
    const p = await run('explain', '--config', configFile, '--server', 'notes', '--user', 'alice', '--prompt', 'purge_plan');
    assert.match(p.stdout, /prompts\/get purge_plan/);
  });
});
