import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/engine.ts';
import { policySchema } from '../../src/policy/schema.ts';
import type { Principal } from '../../src/kernel/caller.ts';
import { caller } from './callers.ts';

function policy(doc: unknown) {
  return compilePolicy(policySchema.parse(doc));
}

const call = (name: string, args?: unknown) => ({ server: 's', method: 'tools/call', params: { name, ...(args !== undefined ? { arguments: args } : {}) } });
const read = (uri: string) => ({ server: 's', method: 'resources/read', params: { uri } });
const subscribe = (uri: string) => ({ server: 's', method: 'resources/subscribe', params: { uri } });
const prompt = (name: string) => ({ server: 's', method: 'prompts/get', params: { name } });
const method = (m: string) => ({ server: 's', method: m, params: {} });

interface Case {
  name: string;
  policy: unknown;
  caller?: Partial<Principal>;
  request: { server: string; method: string; params: unknown };
  effect: 'allow' | 'deny';
  rule?: string | null;
  stepUpScopes?: string[] | undefined;
  reason?: RegExp;
}

const demo = {
  rules: [
    { name: 'read-tools', tools: ['list_notes', 'read_note'], scopes: ['notes:read'] },
    { name: 'admin-write', tools: ['create_*', 'delete_*'], roles: 'admin', scopes: ['notes:write'] },
    { name: 'notes', resources: 'notes://note/*', scopes: 'notes:read' },
    { name: 'admin-resources', resources: 'notes://admin/**', roles: 'admin' },
    { name: 'admin-prompts', prompts: 'purge_*', roles: 'admin' },
  ],
};

const cases: Case[] = [
  // Targets: names, globs, URI patterns, prompts, methods
  { name: 'tool named exactly is allowed when its scope is granted', policy: demo, caller: { scopes: ['notes:read'] }, request: call('read_note'), effect: 'allow', rule: 'read-tools' },
  { name: 'tool glob create_* matches create_note', policy: demo, caller: { roles: ['admin'], scopes: ['notes:write'] }, request: call('create_note'), effect: 'allow', rule: 'admin-write' },
  { name: 'a tool no rule names falls to the default (deny)', policy: demo, caller: { roles: ['admin'], scopes: ['notes:read', 'notes:write'] }, request: call('rm_rf'), effect: 'deny', rule: null, reason: /^this tool is not allowed by the server's policy$/ },
  { name: 'default allow lets an unnamed tool through', policy: { ...demo, default: 'allow' }, request: call('rm_rf'), effect: 'allow', rule: null, reason: /policy default/ },
  { name: 'URI pattern * matches one segment', policy: demo, caller: { scopes: ['notes:read'] }, request: read('notes://note/42'), effect: 'allow', rule: 'notes' },
  { name: 'URI pattern * does not cross /', policy: demo, caller: { scopes: ['notes:read'] }, request: read('notes://note/42/attachments'), effect: 'deny', rule: null },
  { name: 'URI pattern ** crosses /', policy: demo, caller: { roles: ['admin'] }, request: read('notes://admin/audit/2026'), effect: 'allow', rule: 'admin-resources' },
  { name: 'resources/subscribe is checked like resources/read', policy: demo, caller: { roles: ['member'] }, request: subscribe('notes://admin/audit'), effect: 'deny', reason: /requires a role you do not have/ },
  { name: 'RFC 3986 §5.2.4: a URI with .. segments is refused, not normalized', policy: demo, caller: { scopes: ['notes:read'] }, request: read('notes://note/../admin/audit'), effect: 'deny', reason: /canonical form/ },
  { name: 'RFC 3986 §2.3: a percent-encoded dot segment is refused too', policy: { rules: [{ name: 'all', resources: 'file:///**' }] }, request: read('file:///pub/%2E%2e/etc/passwd'), effect: 'deny', reason: /canonical form/ },
  { name: 'prompt glob matches prompts/get', policy: demo, caller: { roles: ['admin'] }, request: prompt('purge_plan'), effect: 'allow', rule: 'admin-prompts' },
  { name: 'a prompt rule does not match a tool of the same name', policy: demo, caller: { roles: ['admin'] }, request: call('purge_plan'), effect: 'deny', rule: null },
  { name: 'completion/complete of a prompt follows the prompt rule', policy: demo, caller: { roles: ['member'] }, request: { server: 's', method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'purge_plan' }, argument: { name: 'a', value: '' } } }, effect: 'deny', reason: /requires a role/ },
  { name: 'a method no rule names is not subject to policy (initialize, ping, lists)', policy: demo, request: method('tools/list'), effect: 'allow', rule: null, reason: /not subject to the policy/ },
  { name: 'a deny method rule refuses that method', policy: { rules: [{ name: 'no-logging', effect: 'deny', methods: 'logging/*' }] }, request: method('logging/setLevel'), effect: 'deny', rule: 'no-logging', reason: /^this method is not allowed/ },
  { name: 'a method some rule names but none applies to falls to the default', policy: { rules: [{ name: 'admin-logging', methods: 'logging/setLevel', roles: 'admin' }] }, caller: { roles: ['member'] }, request: method('logging/setLevel'), effect: 'deny', reason: /method requires a role/ },
  { name: 'a methods rule on tools/call covers every tool', policy: { rules: [{ name: 'block-client', effect: 'deny', methods: 'tools/call', clients: 'bad-client', reason: 'this client is blocked' }, { name: 'all', tools: '*' }] }, caller: { clientId: 'bad-client' }, request: call('anything'), effect: 'deny', rule: 'block-client', reason: /^this client is blocked$/ },
  { name: 'a tools/call without a name is denied as malformed', policy: { default: 'allow', rules: [] }, request: { server: 's', method: 'tools/call', params: {} }, effect: 'deny', reason: /names no tool/ },
  { name: 'tool arguments that are not an object are denied as malformed', policy: { default: 'allow', rules: [] }, request: { server: 's', method: 'tools/call', params: { name: 'x', arguments: [1] } }, effect: 'deny', reason: /must be an object/ },

  // Conditions: roles, claims, clients, client hosts, arguments, scopes
  { name: 'roles: any one of the listed roles suffices', policy: { rules: [{ name: 'r', tools: 't', roles: ['admin', 'ops'] }] }, caller: { roles: ['viewer', 'ops'] }, request: call('t'), effect: 'allow', rule: 'r' },
  { name: 'roles: missing role denies without step-up and names no rule', policy: { rules: [{ name: 'secret-admin-rule', tools: 't', roles: 'admin', scopes: 'x' }] }, caller: { roles: ['member'] }, request: call('t'), effect: 'deny', stepUpScopes: undefined, reason: /^this tool requires a role you do not have$/ },
  { name: 'claims: a bare value means equals', policy: { rules: [{ name: 'c', tools: 't', claims: { email_verified: true } }] }, caller: { claims: { email_verified: true } }, request: call('t'), effect: 'allow' },
  { name: 'claims: equals fails on a different value', policy: { rules: [{ name: 'c', tools: 't', claims: { email_verified: true } }] }, caller: { claims: { email_verified: 'true' } }, request: call('t'), effect: 'deny', reason: /not available to your account/ },
  { name: 'claims: in', policy: { rules: [{ name: 'c', tools: 't', claims: { org: { in: ['acme', 'globex'] } } }] }, caller: { claims: { org: 'globex' } }, request: call('t'), effect: 'allow' },
  { name: 'claims: contains on an array claim, dotted path', policy: { rules: [{ name: 'c', tools: 't', claims: { 'realm_access.roles': { contains: 'ops' } } }] }, caller: { claims: { realm_access: { roles: ['ops'] } } }, request: call('t'), effect: 'allow' },
  { name: 'claims: an absent claim does not hold', policy: { rules: [{ name: 'c', tools: 't', claims: { org: 'acme' } }] }, request: call('t'), effect: 'deny' },
  { name: 'claims: a claim name with dots is read as is first', policy: { rules: [{ name: 'c', tools: 't', claims: { 'https://example.com/tier': 'gold' } }] }, caller: { claims: { 'https://example.com/tier': 'gold' } }, request: call('t'), effect: 'allow' },
  { name: 'clients: exact client_id', policy: { rules: [{ name: 'c', tools: 't', clients: ['client-1'] }] }, request: call('t'), effect: 'allow' },
  { name: 'clients: other client_id is denied without naming the rule', policy: { rules: [{ name: 'c', tools: 't', clients: ['client-2'] }] }, request: call('t'), effect: 'deny', reason: /^this tool is not available to this client$/ },
  { name: 'clientHosts: host of a CIMD URL client_id matches a glob', policy: { rules: [{ name: 'h', tools: 't', clientHosts: '*.example.com' }] }, caller: { clientId: 'https://App.Example.com/client.json' }, request: call('t'), effect: 'allow' },
  { name: 'clientHosts: a non-URL client_id never matches', policy: { rules: [{ name: 'h', tools: 't', clientHosts: '**' }] }, caller: { clientId: 'app.example.com' }, request: call('t'), effect: 'deny' },
  { name: 'clientHosts: http URL client_id does not count as a CIMD host', policy: { rules: [{ name: 'h', tools: 't', clientHosts: 'app.example.com' }] }, caller: { clientId: 'http://app.example.com/c' }, request: call('t'), effect: 'deny' },
  { name: 'arguments: pathPrefix allows a path inside', policy: { rules: [{ name: 'a', tools: 'read_file', arguments: { path: { pathPrefix: '/public/' } } }] }, request: call('read_file', { path: '/public/a/b.txt' }), effect: 'allow' },
  { name: 'arguments: pathPrefix refuses .. traversal', policy: { rules: [{ name: 'a', tools: 'read_file', arguments: { path: { pathPrefix: '/public/' } } }] }, request: call('read_file', { path: '/public/../etc/passwd' }), effect: 'deny', reason: /arguments are not allowed/ },
  { name: 'arguments: pathPrefix refuses a sibling sharing the prefix text', policy: { rules: [{ name: 'a', tools: 'read_file', arguments: { path: { pathPrefix: '/public' } } }] }, request: call('read_file', { path: '/publicity/x' }), effect: 'deny' },
  { name: 'arguments: a missing argument does not hold', policy: { rules: [{ name: 'a', tools: 'read_file', arguments: { path: { prefix: '/p' } } }] }, request: call('read_file', {}), effect: 'deny' },
  { name: 'arguments: equals, in and glob', policy: { rules: [{ name: 'a', tools: 'q', arguments: { mode: 'fast', n: { in: [1, 2] }, table: { glob: 'public_*' } } }] }, request: call('q', { mode: 'fast', n: 2, table: 'public_users' }), effect: 'allow' },
  // Fail closed: values a glob cannot judge never slip past a deny rule (nor through an allow rule)
  { name: 'a deny glob on an argument is not bypassed by a value longer than the matcher reads', policy: { default: 'allow', rules: [{ name: 'no-etc', effect: 'deny', tools: 'read_file', arguments: { path: { glob: '/etc/**' } } }] }, request: call('read_file', { path: '/etc/' + '/'.repeat(5000) + 'passwd' }), effect: 'deny', rule: 'no-etc' },
  { name: 'RFC 3986 §5.2.4: a deny glob on an argument is not bypassed by dot segments', policy: { default: 'allow', rules: [{ name: 'no-etc', effect: 'deny', tools: 'read_file', arguments: { path: { glob: '/etc/**' } } }] }, request: call('read_file', { path: '/tmp/../etc/passwd' }), effect: 'deny', rule: 'no-etc' },
  { name: 'RFC 3986 §2.3: a deny glob on an argument is not bypassed by %2e dot segments', policy: { default: 'allow', rules: [{ name: 'no-etc', effect: 'deny', tools: 'read_file', arguments: { path: { glob: '/etc/**' } } }] }, request: call('read_file', { path: '/tmp/%2e%2e/etc/passwd' }), effect: 'deny', rule: 'no-etc' },
  { name: 'a deny glob still ignores ordinary values outside it', policy: { default: 'allow', rules: [{ name: 'no-etc', effect: 'deny', tools: 'read_file', arguments: { path: { glob: '/etc/**' } } }] }, request: call('read_file', { path: '/tmp/etc/passwd' }), effect: 'allow' },
  { name: 'an allow glob on an argument does not hold for dot segments or over-long values', policy: { rules: [{ name: 'tmp', tools: 'read_file', arguments: { path: { glob: '/tmp/**' } } }] }, request: call('read_file', { path: '/tmp/../etc/passwd' }), effect: 'deny' },
  { name: 'an allow glob on an argument does not hold for an over-long value', policy: { rules: [{ name: 'tmp', tools: 'read_file', arguments: { path: { glob: '/tmp/**' } } }] }, request: call('read_file', { path: '/tmp/' + 'a'.repeat(5000) }), effect: 'deny' },
  { name: 'a deny pathPrefix is not bypassed by .. traversal', policy: { default: 'allow', rules: [{ name: 'no-etc', effect: 'deny', tools: 'read_file', arguments: { path: { pathPrefix: '/etc' } } }] }, request: call('read_file', { path: '/tmp/../etc/passwd' }), effect: 'deny', rule: 'no-etc' },
  { name: 'a deny resource glob is not bypassed by an over-long URI (denied as malformed)', policy: { default: 'allow', rules: [{ name: 'no-admin', effect: 'deny', resources: 'notes://admin/**' }] }, request: read('notes://admin/' + '/'.repeat(5000) + 'audit'), effect: 'deny', reason: /longer than 4096 characters/ },
  { name: 'a deny tool glob is not bypassed by an over-long tool name (denied as malformed)', policy: { default: 'allow', rules: [{ name: 'no-delete', effect: 'deny', tools: 'delete_*' }] }, request: call('delete_' + 'x'.repeat(5000)), effect: 'deny', reason: /longer than 4096 characters/ },
  { name: 'arguments: a non-string never matches prefix', policy: { rules: [{ name: 'a', tools: 'q', arguments: { p: { prefix: '1' } } }] }, request: call('q', { p: 12 }), effect: 'deny' },
  { name: 'scopes: every listed scope is needed; missing ones are a step-up with the union', policy: { rules: [{ name: 's', tools: 't', scopes: 'a b' }] }, caller: { scopes: ['a', 'z'] }, request: call('t'), effect: 'deny', stepUpScopes: ['a', 'z', 'b'], reason: /needs scope b,/ },
  { name: 'MCP 2025-11-25 §Scope Challenge Handling: step-up only when role conditions already hold', policy: demo, caller: { roles: ['admin'], scopes: ['notes:read'] }, request: call('delete_note'), effect: 'deny', rule: null, stepUpScopes: ['notes:read', 'notes:write'] },
  { name: 'step-up is not offered to a member for an admin tool', policy: demo, caller: { roles: ['member'], scopes: ['notes:read'] }, request: call('delete_note'), effect: 'deny', stepUpScopes: undefined, reason: /requires a role/ },

  // Conflict modes
  { name: 'first-match: an earlier allow wins over a later deny', policy: { mode: 'first-match', rules: [{ name: 'allow-all', tools: '*' }, { name: 'deny-delete', effect: 'deny', tools: 'delete_*' }] }, request: call('delete_x'), effect: 'allow', rule: 'allow-all' },
  { name: 'first-match: an earlier deny wins over a later allow', policy: { mode: 'first-match', rules: [{ name: 'deny-delete', effect: 'deny', tools: 'delete_*' }, { name: 'allow-all', tools: '*' }] }, request: call('delete_x'), effect: 'deny', rule: 'deny-delete' },
  { name: 'deny-overrides: a later deny wins over an earlier allow', policy: { mode: 'deny-overrides', rules: [{ name: 'allow-all', tools: '*' }, { name: 'deny-delete', effect: 'deny', tools: 'delete_*' }] }, request: call('delete_x'), effect: 'deny', rule: 'deny-delete' },
  { name: 'deny-overrides: allow when no deny applies, naming the first allow', policy: { mode: 'deny-overrides', rules: [{ name: 'allow-all', tools: '*' }, { name: 'allow-t', tools: 't' }, { name: 'deny-delete', effect: 'deny', tools: 'delete_*' }] }, request: call('t'), effect: 'allow', rule: 'allow-all' },
  { name: 'deny-overrides: a deny rule that applies is not stepped up', policy: { mode: 'deny-overrides', rules: [{ name: 'w', tools: 't', scopes: 'w' }, { name: 'no-t', effect: 'deny', tools: 't' }] }, request: call('t'), effect: 'deny', rule: 'no-t', stepUpScopes: undefined },
  { name: 'first-match: step-up when the scoped allow precedes the deny', policy: { mode: 'first-match', rules: [{ name: 'w', tools: 't', scopes: 'w' }, { name: 'no-t', effect: 'deny', tools: 't' }] }, caller: { scopes: ['r'] }, request: call('t'), effect: 'deny', rule: 'no-t', stepUpScopes: ['r', 'w'] },
  { name: 'first-match: no step-up when a deny precedes the scoped allow', policy: { mode: 'first-match', rules: [{ name: 'no-t', effect: 'deny', tools: 't' }, { name: 'w', tools: 't', scopes: 'w' }] }, request: call('t'), effect: 'deny', rule: 'no-t', stepUpScopes: undefined },
  { name: 'a deny rule with a reason shows it; arguments decide a deny rule', policy: { mode: 'deny-overrides', rules: [{ name: 'all', tools: '*' }, { name: 'no-prod', effect: 'deny', tools: 'query', arguments: { db: 'prod' }, reason: 'queries against prod are not allowed' }] }, request: call('query', { db: 'prod' }), effect: 'deny', reason: /^queries against prod are not allowed$/ },
  { name: 'deny-overrides: the deny rule does not apply to other arguments', policy: { mode: 'deny-overrides', rules: [{ name: 'all', tools: '*' }, { name: 'no-prod', effect: 'deny', tools: 'query', arguments: { db: 'prod' } }] }, request: call('query', { db: 'dev' }), effect: 'allow', rule: 'all' },
];

describe('policy engine decisions (docs/policy.md: rules, evaluation order, step-up)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = policy(c.policy).decide(caller(c.caller), c.request);
      assert.equal(d.effect, c.effect, `decision: ${JSON.stringify(d)}`);
      if (c.rule !== undefined) assert.equal(d.rule, c.rule);
      if ('stepUpScopes' in c) assert.deepEqual(d.effect === 'deny' ? d.stepUpScopes : undefined, c.stepUpScopes);
      if (c.reason) assert.match(d.reason, c.reason);
    });
  }

  it('deny reasons never name a rule or another user', () => {
    const p = policy({ rules: [{ name: 'only-for-carol', tools: 't', roles: 'admin', claims: { sub: 'carol' } }] });
    const d = p.decide(caller({ subject: 'bob', roles: ['member'] }), call('t'));
    assert.equal(d.effect, 'deny');
    assert.doesNotMatch(d.reason, /only-for-carol|carol|admin/);
  });

  it('decide does not mutate the request or the caller', () => {
    const p = policy(demo);
    const who = caller({ roles: ['admin'], scopes: ['notes:read'] });
    const req = call('delete_note', { id: 1 });
    const before = JSON.stringify([who, req]);
    p.decide(who, req);
    assert.equal(JSON.stringify([who, req]), before);
  });

  it('the remembered rules per target stay correct past the cache bound (client-chosen names)', () => {
    const p = policy({ rules: [{ name: 'reads', tools: 'read_*' }] });
    for (let i = 0; i < 5000; i++) {
      assert.equal(p.decide(caller(), call(i % 2 ? `read_${i}` : `write_${i}`)).effect, i % 2 ? 'allow' : 'deny');
    }
    assert.equal(p.decide(caller(), call('read_1')).effect, 'allow');
    assert.equal(p.decide(caller(), call('write_2')).effect, 'deny');
  });

  it('a remembered decision is the one made for that principal and target; arguments still decide where a rule reads them', () => {
    const p = policy({ mode: 'deny-overrides', rules: [{ name: 'tools', tools: ['query', 'echo'] }, { name: 'admins', tools: 'purge', roles: 'admin' }, { name: 'no-prod', effect: 'deny', tools: 'query', arguments: { db: 'prod' } }] });
    const admin = caller({ roles: ['admin'] });
    const member = caller({ roles: ['member'] });
    for (let i = 0; i < 3; i++) {
      // Same target, two principals: each keeps its own answer, however often asked and in any order.
      assert.equal(p.decide(admin, call('purge')).effect, 'allow');
      assert.equal(p.decide(member, call('purge')).effect, 'deny');
      // A rule reading arguments: never answered from memory.
      assert.equal(p.decide(member, call('query', { db: 'dev' })).effect, 'allow');
      assert.equal(p.decide(member, call('query', { db: 'prod' })).effect, 'deny');
      // Arguments that are not an object make the request malformed, after an allow for the same tool.
      assert.equal(p.decide(member, call('echo', { x: 1 })).effect, 'allow');
      assert.equal(p.decide(member, call('echo', 'not an object')).effect, 'deny');
    }
    const first = p.decide(admin, call('purge'));
    assert.equal(p.decide(admin, call('purge', { any: 'thing' })), first, 'the same frozen decision for any arguments');
    assert.ok(Object.isFrozen(first));
  });

  it('MCP server/tools, resources, prompts, utilities/completion: the decision names the audit target', () => {
    const engine = policy({ ...demo, default: 'allow' });
    const who = caller({ roles: ['admin'], scopes: ['notes:read', 'notes:write'] });
    const complete = (ref: unknown) => ({ server: 's', method: 'completion/complete', params: { ref, argument: { name: 'a', value: '' } } });
    const targets = [
      call('read_note', { id: '1' }),
      read('notes://note/1'),
      subscribe('notes://note/2'),
      { server: 's', method: 'resources/unsubscribe', params: { uri: 'notes://note/2' } },
      prompt('summarize'),
      complete({ type: 'ref/prompt', name: 'summarize' }),
      complete({ type: 'ref/resource', uri: 'notes://note/{id}' }),
      method('tools/list'),
    ].map((r) => engine.decide(who, r).target);
    assert.deepEqual(targets, ['read_note', 'notes://note/1', 'notes://note/2', 'notes://note/2', 'summarize', 'summarize', 'notes://note/_', null]);
  });

  it('completion/complete: a prompt and a resource template of the same name are told apart', () => {
    const p = policy({ rules: [{ name: 'prompt-x', prompts: 'x' }] });
    const complete = (ref: unknown) => ({ server: 's', method: 'completion/complete', params: { ref, argument: { name: 'a', value: '' } } });
    assert.equal(p.decide(caller(), complete({ type: 'ref/prompt', name: 'x' })).effect, 'allow');
    assert.equal(p.decide(caller(), complete({ type: 'ref/resource', uri: 'x' })).effect, 'deny');
    assert.equal(p.decide(caller(), complete({ type: 'ref/prompt', name: 'x' })).effect, 'allow');
  });

  it('explain reports, per rule, whether it names the request and which condition failed', () => {
    const p = policy(demo);
    const { decision, rules } = p.explain(caller({ roles: ['member'], scopes: ['notes:read'] }), call('delete_note'));
    assert.equal(decision.effect, 'deny');
    const trace = rules.find((r) => r.name === 'admin-write')!;
    assert.deepEqual({ names: trace.names, failed: trace.failed, applies: trace.applies, missing: trace.missingScopes }, { names: true, failed: 'roles', applies: false, missing: ['notes:write'] });
    assert.equal(rules.find((r) => r.name === 'read-tools')!.names, false);
  });
});
