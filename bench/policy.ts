/**
 * Policy engine micro-benchmark: one decision (goal: median ≤ 5 µs) and
 * filtering a 500-tool list. Run: node --import tsx bench/policy.ts [--json]
 *
 * Method: the demo policy plus a 40-rule policy (globs, claims, clients, arguments) are compiled
 * once; each sample times a batch of calls with process.hrtime.bigint and divides by the batch
 * size; the median and p99 of the samples are reported, after a warm-up so the JIT has settled.
 */
import { cpus } from 'node:os';
import { buildDemoConfig } from '../src/config/demo.ts';
import { compilePolicy } from '../src/policy/engine.ts';
import { policySchema } from '../src/policy/schema.ts';
import type { Caller } from '../src/kernel/caller.ts';

function caller(overrides: Partial<Caller>): Caller {
  return { subject: 'alice', clientId: 'https://app.example.com/client.json', issuer: 'https://as', audience: 'https://mcp/mcp', scopes: ['notes:read'], roles: ['member'], claims: { org: 'acme' }, expiresAt: 0, accessToken: '', ...overrides };
}

function measure(label: string, batch: number, samples: number, fn: () => unknown): { label: string; medianUs: number; p99Us: number } {
  for (let i = 0; i < batch * 20; i++) fn();
  const perOp: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    perOp.push(Number(process.hrtime.bigint() - start) / 1000 / batch);
  }
  perOp.sort((a, b) => a - b);
  return { label, medianUs: perOp[Math.floor(samples / 2)]!, p99Us: perOp[Math.floor(samples * 0.99)]! };
}

const demo = compilePolicy(buildDemoConfig({}).servers[0]!.policy!);
const bob = caller({ subject: 'bob', roles: ['member'], scopes: ['notes:read', 'notes:write'] });
const alice = caller({ roles: ['admin'], scopes: ['notes:read', 'notes:write'] });
const aliceRead = caller({ roles: ['admin'], scopes: ['notes:read'] });

const big = compilePolicy(policySchema.parse({
  mode: 'deny-overrides',
  rules: [
    ...Array.from({ length: 36 }, (_, i) => ({ name: `team-${i}`, tools: [`team${i}_*`, `shared_${i}`], roles: ['member', 'admin'], scopes: `team:${i % 4}`, claims: { org: 'acme' } })),
    { name: 'partner', tools: 'partner_*', clientHosts: '*.example.com' },
    { name: 'files', tools: 'read_file', arguments: { path: { pathPrefix: '/public' } } },
    { name: 'no-prod', effect: 'deny', tools: 'query', arguments: { db: 'prod' } },
    { name: 'admin', tools: '**', roles: 'admin', scopes: 'admin' },
  ],
}));
const member = caller({ scopes: ['team:0', 'team:1', 'team:2', 'team:3'] });

const call = (name: string, args?: Record<string, unknown>) => ({ server: 'notes', method: 'tools/call', params: { name, arguments: args ?? {} } });
const tools500 = { tools: Array.from({ length: 500 }, (_, i) => ({ name: i % 5 === 0 ? `delete_${i}` : i % 2 ? 'read_note' : `team${i % 36}_tool${i}`, inputSchema: { type: 'object' } })), nextCursor: 'c' };

const results = [
  measure('decide: demo, allow (bob read_note)', 1000, 300, () => demo.decide(bob, call('read_note'))),
  measure('decide: demo, deny by role (bob delete_note)', 1000, 300, () => demo.decide(bob, call('delete_note'))),
  measure('decide: demo, step-up (alice+notes:read delete_note)', 1000, 300, () => demo.decide(aliceRead, call('delete_note'))),
  measure('decide: 40 rules, deny-overrides, glob+claims match (rule 30)', 1000, 300, () => big.decide(member, call('team30_x'))),
  measure('decide: 40 rules, path argument (read_file)', 1000, 300, () => big.decide(member, call('read_file', { path: '/public/docs/a.md' }))),
  measure('decide: resources/read (demo, alice)', 1000, 300, () => demo.decide(alice, { server: 'notes', method: 'resources/read', params: { uri: 'notes://note/42' } })),
  measure('filterList: 500 tools, demo policy (bob)', 20, 200, () => demo.filterList(bob, 'tools/list', tools500)),
  measure('filterList: 500 tools, 40-rule policy (member)', 20, 200, () => big.filterList(member, 'tools/list', tools500)),
];

const machine = `${cpus()[0]?.model ?? 'unknown CPU'} ×${cpus().length}, Node ${process.version}, ${process.platform}/${process.arch}`;
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ machine, results }));
} else {
  console.log(`policy engine benchmark — ${machine}`);
  for (const r of results) console.log(`${r.label.padEnd(66)} median ${r.medianUs.toFixed(3).padStart(8)} µs   p99 ${r.p99Us.toFixed(3).padStart(8)} µs`);
  const decisions = results.filter((r) => r.label.startsWith('decide'));
  const worst = Math.max(...decisions.map((r) => r.medianUs));
  console.log(`goal: one decision median ≤ 5 µs — worst median ${worst.toFixed(3)} µs: ${worst <= 5 ? 'met' : 'NOT met'}`);
  process.exitCode = worst <= 5 ? 0 : 1;
}
