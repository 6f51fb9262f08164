import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { policySchema } from '../../src/policy/schema.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { createServerPolicy } from '../../src/policy/index.ts';

function configWith(policy: unknown) {
  return {
    publicUrl: 'https://mcp.example.com',
    servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: 'https://upstream.example.com/mcp' } }, scopes: ['notes:read'], policy }],
  };
}

function configError(policy: unknown): string {
  try {
    parseConfig(configWith(policy));
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail('the policy was accepted');
}

const invalid: { name: string; policy: unknown; message: RegExp }[] = [
  { name: 'a rule that names nothing', policy: { rules: [{ name: 'ok', tools: 't' }, { name: 'admin-tools', roles: 'admin' }] }, message: /servers\.0\.policy\.rules\.1 .*rule "admin-tools": names no tools, resources, prompts or methods/ },
  { name: 'an unknown key in a rule', policy: { rules: [{ name: 'x', tools: 't' }, { name: 'y', tools: 't' }, { name: 'z', tools: 't' }, { name: 'admin-tools', tool: 'delete_note' }] }, message: /servers\.0\.policy\.rules\.3 .*rule "admin-tools": unknown key "tool"/ },
  { name: 'a wrongly typed condition', policy: { rules: [{ name: 'admin-tools', tools: 't', roles: 7 }] }, message: /servers\.0\.policy\.rules\.0\.roles .*rule "admin-tools": must be a string or a list/ },
  { name: 'a duplicate rule name', policy: { rules: [{ name: 'dup', tools: 'a' }, { name: 'dup', tools: 'b' }] }, message: /rules\.1\.name .*rule "dup": the name is already used by rule #0/ },
  { name: 'a rule without a name', policy: { rules: [{ tools: 'a' }] }, message: /rules\.0\.name .*rule #0: every rule needs a name/ },
  { name: 'arguments on a resource-only rule', policy: { rules: [{ name: 'files', resources: 'file:///**', arguments: { p: 'x' } }] }, message: /rule "files": argument conditions need tools or prompts/ },
  { name: 'a reason on an allow rule', policy: { rules: [{ name: 'r', tools: 't', reason: 'no' }] }, message: /rule "r": a reason is shown when a deny rule refuses/ },
  { name: 'a scope with a quote (RFC 6749 §3.3)', policy: { rules: [{ name: 'q', tools: 't', scopes: ['a"b'] }] }, message: /rule "q": a scope token has no spaces or quotes/ },
  { name: 'too many wildcards', policy: { rules: [{ name: 'w', tools: 'a*b*c*d*e*f*g*h*i*j' }] }, message: /rule "w": a pattern may hold at most 8 wildcards/ },
  { name: 'a bad argument condition', policy: { rules: [{ name: 'p', tools: 't', arguments: { path: { pathPrefix: 'relative' } } }] }, message: /rules\.0\.arguments\.path\.pathPrefix .*rule "p": a pathPrefix is an absolute path/ },
  { name: 'an unknown mode', policy: { mode: 'last-match', rules: [] }, message: /servers\.0\.policy\.mode/ },
];

describe('policy schema: an invalid policy stops start-up naming the rule', () => {
  for (const c of invalid) {
    it(`rejects ${c.name}`, () => {
      assert.match(configError(c.policy), c.message);
    });
  }

  it('defaults: first-match, default deny, lists include step-up items, rule effect allow', () => {
    const p = policySchema.parse({ rules: [{ name: 'r', tools: 't', scopes: 'a b' }] });
    assert.equal(p.mode, 'first-match');
    assert.equal(p.default, 'deny');
    assert.equal(p.lists, 'usable-or-step-up');
    assert.equal(p.rules[0]!.effect, 'allow');
    assert.deepEqual(p.rules[0]!.scopes, ['a', 'b']);
    assert.deepEqual(p.rules[0]!.tools, ['t']);
  });

  it('a server without a policy has no engine (every authenticated call allowed)', () => {
    const config = parseConfig(configWith(undefined));
    assert.equal(createServerPolicy(config.servers[0]!), undefined);
  });

  it('the demo configuration carries a valid policy', () => {
    const server = buildDemoConfig({}).servers[0]!;
    assert.ok(server.policy);
    assert.ok(createServerPolicy(server));
    assert.deepEqual(server.policy.rules.map((r) => r.name), ['read-tools', 'read-notes', 'summarize', 'admin-write-tools', 'admin-audit']);
  });
});
