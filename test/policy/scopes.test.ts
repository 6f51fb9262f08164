import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { advertisedScopes, describeScopes } from '../../src/policy/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';

describe('scopes derived from policy and advertised in RFC 9728 scopes_supported', () => {
  const server = parseConfig({
    publicUrl: 'https://mcp.example.com',
    servers: [{
      name: 's', path: '/mcp', upstream: { http: { url: 'https://u.example.com/mcp' } }, scopes: ['base'],
      policy: { rules: [
        { name: 'r', tools: ['a', 'b_*'], scopes: 'base extra' },
        { name: 'admin', tools: 'c', roles: 'admin', scopes: 'admin:write' },
        { name: 'no', effect: 'deny', tools: 'd', scopes: 'never' },
        { name: 'res', resources: 'x://*', scopes: 'res:read' },
      ] },
    }],
  }).servers[0]!;

  it('RFC 9728 §2 scopes_supported: the server\'s scopes, then those its rules name, each once', () => {
    assert.deepEqual(advertisedScopes(server), ['base', 'extra', 'admin:write', 'never', 'res:read']);
  });

  it('describeScopes: the tools each scope unlocks (allow rules only)', () => {
    assert.deepEqual(describeScopes(server), { base: ['a', 'b_*'], extra: ['a', 'b_*'], 'admin:write': ['c'], never: [], 'res:read': [] });
  });

  it('describeScopes with roles: only rules the user\'s roles can satisfy', () => {
    assert.deepEqual(describeScopes(server, ['member'])['admin:write'], []);
    assert.deepEqual(describeScopes(server, ['admin'])['admin:write'], ['c']);
  });

  it('the demo: notes:write unlocks create_note and delete_note', () => {
    const d = describeScopes(buildDemoConfig({}).servers[0]!);
    assert.deepEqual(d['notes:write'], ['create_note', 'delete_note']);
    assert.deepEqual(d['notes:read'], ['list_notes', 'read_note', 'search_notes', 'whoami']);
  });
});
