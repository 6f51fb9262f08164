/**
 * Token store benchmark: what sealing under a keychain key costs.
 * Run: node --import tsx bench/token-store.ts [--json]      (exit 1 if a goal is missed)
 *
 * Goals: a read in keychain mode (file read + AES-256-GCM open with the cached data key) stays
 * ≤ 1 ms median, so bench/client.ts's currentAccessToken() goal holds in keychain mode; an update
 * (lock, read, seal, atomic write; the data key looked up in the keychain under the key lock) is
 * ≤ 50 ms median; `auto` decides (one keychain lookup when the key exists) in ≤ 250 ms median,
 * and falls back without a D-Bus session in ≤ 250 ms median.
 *
 * Method: a real Secret Service (private D-Bus session bus + gnome-keyring-daemon, as in the
 * tests); file and keychain stores measured in alternating rounds on the same machine, so load
 * hits both alike; per-operation process.hrtime.bigint(); medians and p95 over all rounds, and
 * the keychain/file ratio of the medians.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../src/client/token-store.ts';
import { startSecretService } from '../test/client/secret-service.ts';
import { median } from './fixtures/median.ts';

const json = process.argv.includes('--json');
const SERVER = 'https://mcp.example.com/mcp';
const ROUNDS = 5;
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-token-store-'));
const ss = await startSecretService();

const samples: Record<string, number[]> = {};
async function time(label: string, n: number, fn: () => Promise<unknown>): Promise<void> {
  const out = (samples[label] ??= []);
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { medianMs: median(s), p95Ms: s[Math.floor(s.length * 0.95)]! };
};
const tokens = () => ({ access_token: `at-${crypto.randomUUID()}`, refresh_token: `rt-${crypto.randomUUID()}`, expires_at: Date.now() + 900_000 });

let failed = false;
try {
  const homes = { file: join(dir, 'file'), keychain: join(dir, 'keychain') };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ['file', 'keychain'] as const) {
      const store = new TokenStore(homes[mode], {}, { mode, env: ss.env });
      await store.update(SERVER, (r) => void (r.tokens = tokens())); // warm-up, creates the key once
      for (let i = 0; i < 20; i++) await store.read(SERVER);
      await time(`${mode}: read (fresh token)`, 200, () => store.read(SERVER));
      await time(`${mode}: update (token refresh write)`, 20, () => store.update(SERVER, (r) => void (r.tokens = tokens())));
    }
    await time('auto: decide (key already in the keychain)', 5, () => new TokenStore(homes.keychain, {}, { mode: 'auto', env: ss.env }).resolveBackend());
    await time('auto: fall back (no D-Bus session)', 5, () =>
      new TokenStore(homes.file, {}, { mode: 'auto', env: { PATH: process.env.PATH, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(dir, 'none')}` } }).resolveBackend(),
    );
  }
} finally {
  await ss.stop();
  rmSync(dir, { recursive: true, force: true });
}

const goals: Record<string, number> = {
  'keychain: read (fresh token)': 1,
  'keychain: update (token refresh write)': 50,
  'auto: decide (key already in the keychain)': 250,
  'auto: fall back (no D-Bus session)': 250,
};
const results = Object.entries(samples).map(([label, xs]) => ({ label, ...stats(xs), goalMs: goals[label] }));
const ratio = (what: string) => stats(samples[`keychain: ${what}`]!).medianMs / stats(samples[`file: ${what}`]!).medianMs;
const ratios = { read: ratio('read (fresh token)'), update: ratio('update (token refresh write)') };
for (const r of results) if (r.goalMs !== undefined && r.medianMs > r.goalMs) failed = true;
if (json) {
  console.log(JSON.stringify({ results, keychainOverFile: ratios }, null, 2));
} else {
  for (const r of results) {
    const goal = r.goalMs === undefined ? '' : `  goal ≤ ${r.goalMs} ms: ${r.medianMs <= r.goalMs ? 'met' : 'MISSED'}`;
    console.log(`${r.label.padEnd(46)} median ${r.medianMs.toFixed(3).padStart(8)} ms  p95 ${r.p95Ms.toFixed(3).padStart(8)} ms${goal}`);
  }
  console.log(`keychain / file, medians: read ×${ratios.read.toFixed(2)}, update ×${ratios.update.toFixed(2)}`);
}
process.exit(failed ? 1 : 0);
