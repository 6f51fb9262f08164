import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/engine.ts';
import { policySchema } from '../../src/policy/schema.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { caller } from './callers.ts';

const demoPolicy = compilePolicy(buildDemoConfig({}).servers[0]!.policy!);
const alice = caller({ subject: 'alice', roles: ['admin'], scopes: ['notes:read', 'notes:write'] });
const aliceReadOnly = caller({ subject: 'alice', roles: ['admin'], scopes: ['notes:read'] });
const bob = caller({ subject: 'bob', roles: ['member'], scopes: ['notes:read', 'notes:write'] });

const tool = (name: string) => ({ name, inputSchema: { type: 'object' } });
const allTools = ['list_notes', 'read_note', 'search_notes', 'create_note', 'delete_note', 'whoami'];
const names = (r: unknown, key: string, field: string) => ((r as Record<string, Record<string, string>[]>)[key] ?? []).map((i) => i[field]);

describe('filtered lists: a list shows only what the caller may use (docs/policy.md)', () => {
  it('MCP 2025-11-25 server/tools §Listing Tools: bob (member) sees only the read tools', () => {
    const out = demoPolicy.filterList(bob, 'tools/list', { tools: allTools.map(tool) });
    assert.deepEqual(names(out, 'tools', 'name'), ['list_notes', 'read_note', 'search_notes', 'whoami']);
  });

  it('alice (admin) sees every tool', () => {
    const out = demoPolicy.filterList(alice, 'tools/list', { tools: allTools.map(tool) });
    assert.deepEqual(names(out, 'tools', 'name'), allTools);
  });

  it('lists: usable-or-step-up shows alice the write tools she can step up to; usable hides them', () => {
    const out = demoPolicy.filterList(aliceReadOnly, 'tools/list', { tools: allTools.map(tool) });
    assert.deepEqual(names(out, 'tools', 'name'), allTools);
    const strict = compilePolicy({ ...buildDemoConfig({}).servers[0]!.policy!, lists: 'usable' });
    assert.deepEqual(names(strict.filterList(aliceReadOnly, 'tools/list', { tools: allTools.map(tool) }), 'tools', 'name'), ['list_notes', 'read_note', 'search_notes', 'whoami']);
  });

  it('MCP 2025-11-25 utilities/pagination: nextCursor and _meta are kept; the input is not mutated', () => {
    const input = { tools: allTools.map(tool), nextCursor: 'page-2', _meta: { x: 1 } };
    const copy = structuredClone(input);
    const out = demoPolicy.filterList(bob, 'tools/list', input) as typeof input;
    assert.equal(out.nextCursor, 'page-2');
    assert.deepEqual(out._meta, { x: 1 });
    assert.deepEqual(input, copy);
    assert.notEqual(out, input);
  });

  it('SEP-2549 (MCP 2026-07-28): a filtered list with cache fields becomes cacheScope private; 2025-era results get none', () => {
    const modern = demoPolicy.filterList(bob, 'tools/list', { tools: allTools.map(tool), ttlMs: 60_000, cacheScope: 'public' }) as Record<string, unknown>;
    assert.deepEqual([modern.cacheScope, modern.ttlMs], ['private', 60_000]);
    const legacy = demoPolicy.filterList(bob, 'tools/list', { tools: allTools.map(tool) }) as Record<string, unknown>;
    assert.equal('cacheScope' in legacy, false);
  });

  it('an empty filtered page still carries its cursor', () => {
    const out = demoPolicy.filterList(bob, 'tools/list', { tools: [tool('delete_note')], nextCursor: 'c3' }) as Record<string, unknown>;
    assert.deepEqual(out, { tools: [], nextCursor: 'c3' });
  });

  it('resources/list filters by uri; dot-segment URIs are dropped', () => {
    const resources = ['notes://note/1', 'notes://admin/audit', 'notes://note/../admin/audit'].map((uri) => ({ uri, name: uri }));
    assert.deepEqual(names(demoPolicy.filterList(bob, 'resources/list', { resources }), 'resources', 'uri'), ['notes://note/1']);
    assert.deepEqual(names(demoPolicy.filterList(alice, 'resources/list', { resources }), 'resources', 'uri'), ['notes://note/1', 'notes://admin/audit']);
  });

  it('RFC 6570 templates: each {expression} stands for one segment when matched against patterns', () => {
    const resourceTemplates = [{ uriTemplate: 'notes://note/{id}', name: 'note' }, { uriTemplate: 'notes://admin/{log}', name: 'admin' }, { uriTemplate: 'notes://note/{id}/raw', name: 'raw' }];
    assert.deepEqual(names(demoPolicy.filterList(bob, 'resources/templates/list', { resourceTemplates }), 'resourceTemplates', 'uriTemplate'), ['notes://note/{id}']);
    assert.deepEqual(names(demoPolicy.filterList(alice, 'resources/templates/list', { resourceTemplates }), 'resourceTemplates', 'uriTemplate'), ['notes://note/{id}', 'notes://admin/{log}']);
  });

  it('prompts/list filters by name', () => {
    const prompts = [{ name: 'summarize' }, { name: 'purge_plan' }];
    assert.deepEqual(names(demoPolicy.filterList(bob, 'prompts/list', { prompts }), 'prompts', 'name'), ['summarize']);
    assert.deepEqual(names(demoPolicy.filterList(alice, 'prompts/list', { prompts }), 'prompts', 'name'), ['summarize', 'purge_plan']);
  });

  it('argument conditions: an allow rule with argument conditions keeps the tool listed; a deny rule with them does not hide it', () => {
    const p = compilePolicy(policySchema.parse({
      mode: 'deny-overrides',
      rules: [
        { name: 'files', tools: 'read_file', arguments: { path: { pathPrefix: '/public' } } },
        { name: 'q', tools: 'query' },
        { name: 'no-prod', effect: 'deny', tools: 'query', arguments: { db: 'prod' } },
        { name: 'no-drop', effect: 'deny', tools: 'drop' },
      ],
    }));
    const out = p.filterList(caller(), 'tools/list', { tools: ['read_file', 'query', 'drop'].map(tool) });
    assert.deepEqual(names(out, 'tools', 'name'), ['read_file', 'query']);
  });

  it('items without a string name are dropped (fail closed); other methods and shapes pass through', () => {
    const out = demoPolicy.filterList(alice, 'tools/list', { tools: [tool('read_note'), { name: 5 }, null, 'x'] });
    assert.deepEqual(out, { tools: [tool('read_note')] });
    const other = { content: [] };
    assert.equal(demoPolicy.filterList(alice, 'tools/call', other), other);
    assert.equal(demoPolicy.filterList(alice, 'tools/list', null), null);
    const noArray = { tools: 'nope' };
    assert.equal(demoPolicy.filterList(alice, 'tools/list', noArray), noArray);
  });

  it('a 500-tool list is filtered per caller', () => {
    const tools = Array.from({ length: 500 }, (_, i) => tool(i % 2 ? `read_${i}` : `admin_${i}`));
    const p = compilePolicy(policySchema.parse({ rules: [{ name: 'reads', tools: 'read_*' }, { name: 'admin', tools: 'admin_*', roles: 'admin' }] }));
    assert.equal((p.filterList(caller({ roles: ['member'] }), 'tools/list', { tools }) as { tools: unknown[] }).tools.length, 250);
    assert.equal((p.filterList(caller({ roles: ['admin'] }), 'tools/list', { tools }) as { tools: unknown[] }).tools.length, 500);
  });
});
