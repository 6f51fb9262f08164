/**
 * Scale-out benchmark: tools/call through mcp-warden (HTTP upstream; JWT, required scope, a
 * policy and so an audit event per call) at concurrency 1 and 32, side by side in one run:
 *   - one instance on SQLite,
 *   - one instance on PostgreSQL + Redis,
 *   - three instances on PostgreSQL + Redis behind nginx round-robin (no stickiness; needs MCP
 *     sessions shared across instances: until then its rows say why they are missing),
 * with CPU ms per request of the mcp-warden processes (and of nginx), and PostgreSQL and Redis
 * round trips per tool call. Goal: PostgreSQL + Redis keeps >= 85 % of SQLite's throughput.
 * Run: npm run bench -- scale-out [--quick] [--json] [--rounds N] [--no-count]
 *   --no-count  PostgreSQL reached directly, without the counting proxy (which runs in this
 *               process, the load generator, and parses every message the instances send)
 *
 * Method: every instance is a real `mcp-warden start` process (test/helpers/cluster.ts); the
 * upstream is the lean HTTP MCP server in a child of its own (bench/fixtures/lean-mcp-http.ts);
 * this process is the load generator (bench/fixtures/mcp-load.ts: undici Pool, one keep-alive
 * connection per concurrent worker, one MCP session per target). Rounds are interleaved across
 * targets, the order rotating each round; the median round is reported. CPU: /proc/<pid>/stat
 * before and after each round. PostgreSQL round trips: each deployment reaches PostgreSQL through
 * a proxy of its own that counts Query and Sync messages (bench/fixtures/postgres-round-trips.ts).
 * Redis round trips: each deployment has a redis-server of its own; INFO commandstats before and
 * after each round.
 * Both counts include whatever the instances do on timers during the round (audit batches,
 * signing-key checks), which is part of the cost. Needs PostgreSQL (WARDEN_TEST_POSTGRES_URL),
 * redis-server and nginx (scripts/prerequisites.mjs).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { cpuMs, load, median, openSession, closeSession, startServersChild, stopChildren, type Session } from './fixtures/mcp-load.ts';
import { countingPostgresProxy } from './fixtures/postgres-round-trips.ts';
import { CLUSTER_AGENT_SECRET, startCluster, startOwnRedis, type Cluster } from '../test/helpers/cluster.ts';
import { clientCredentialsToken } from '../test/helpers/oauth.ts';
import { TEST_POSTGRES_URL } from '../test/helpers/postgres.ts';

const quick = process.argv.includes('--quick');
const asJson = process.argv.includes('--json');
const countRoundTrips = !process.argv.includes('--no-count');
const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex !== -1 ? Number(process.argv[roundsIndex + 1]) : quick ? 1 : 15;
const REQUESTS = { 1: quick ? 300 : 2000, 32: quick ? 2000 : 8000 } as const;
const WARMUP = 200;

const SQLITE = '1 instance, SQLite';
const POSTGRES = '1 instance, PostgreSQL + Redis';
const NGINX3 = '3 instances, PostgreSQL + Redis, nginx round-robin';

interface Target {
  name: string;
  cluster: Cluster;
  url: string;
  token: string;
  /** mcp-warden processes. */
  wardenPids: () => number[];
  /** nginx master and workers, if any. */
  nginxPids: () => number[];
  /** PostgreSQL round trips of this deployment so far (0 on SQLite). */
  pgRoundTrips: () => number;
  /** Redis commands of this deployment so far (0 without Redis). */
  redisCalls: () => Promise<number>;
}

interface Round { rps: number; p50: number; p95: number; cpu: number; nginxCpu: number; pgCpu: number; pg: number; redis: number }

/**
 * The PostgreSQL server's processes (postmaster, backends, WAL writer, checkpointer): its CPU is
 * part of what a call costs on this box although no mcp-warden process spends it (the batched
 * audit inserts). One server serves every deployment; in a round only the target under test is
 * loaded, so the others add only their timers (a revocation read every 500 ms).
 */
function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return pids;
}

/** CPU ms of the processes in `before` that still exist, since `before` was taken. */
function cpuSince(before: Map<number, number>): number {
  let total = 0;
  for (const pid of postgresPids()) total += (cpuMs(pid) ?? 0) - (before.get(pid) ?? 0);
  return total;
}
const cpuSnapshot = () => new Map(postgresPids().map((pid) => [pid, cpuMs(pid) ?? 0]));

const sumCpu = (pids: number[]) => pids.reduce((a, p) => a + (cpuMs(p) ?? NaN), 0);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-scale-out-'));
  const { info: upstreamInfo } = await startServersChild(['upstream']);
  const upstreamUrl = upstreamInfo.url as string;
  // Each PostgreSQL deployment gets its own counting proxy and its own redis-server, so a round
  // counts the round trips of the target under test only (the others' timers go elsewhere).
  const pgTarget = new URL(TEST_POSTGRES_URL);
  const backends = async (name: string) => {
    const redis = await startOwnRedis(mkdtempSync(join(dir, `${name}-redis-`)));
    const proxy = countRoundTrips ? await countingPostgresProxy({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) }) : undefined;
    const url = new URL(TEST_POSTGRES_URL);
    if (proxy) {
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
    }
    const client = createClient({ url: redis.url });
    await client.connect();
    return {
      redis, proxy, client, postgresUrl: url.href,
      /** Commands Redis has executed, other than the INFO calls that read the count. */
      async redisCalls() {
        const info = await client.info('commandstats');
        let calls = 0;
        for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
        return calls;
      },
      async close() {
        await client.quit().catch(() => {});
        await redis.stop();
        await proxy?.close();
      },
    };
  };
  const forPostgres = await backends('pg');
  const forThree = await backends('nginx');

  const common = { upstreamUrl, logLevel: 'warn' } as const;
  const clusters: Cluster[] = [];
  try {
    const sqlite = await startCluster({ ...common, instances: 1, storage: 'sqlite', front: 'direct', redisUrl: false, dirPrefix: 'warden-bench-sqlite-' });
    clusters.push(sqlite);
    const postgres = await startCluster({ ...common, instances: 1, front: 'direct', postgresUrl: forPostgres.postgresUrl, redisUrl: forPostgres.redis.url, dirPrefix: 'warden-bench-pg-' });
    clusters.push(postgres);
    const three = await startCluster({ ...common, instances: 3, postgresUrl: forThree.postgresUrl, redisUrl: forThree.redis.url, dirPrefix: 'warden-bench-nginx-' });
    clusters.push(three);

    const target = async (name: string, cluster: Cluster, withNginx: boolean, backend?: typeof forPostgres): Promise<Target> => {
      const url = `${cluster.front}/mcp`;
      const { access_token } = await clientCredentialsToken({ issuer: cluster.front, clientSecret: CLUSTER_AGENT_SECRET, resource: url, scope: 'notes:read' });
      return {
        name, cluster, url, token: access_token,
        wardenPids: () => cluster.instances.map((i) => i.child.pid!),
        nginxPids: () => (withNginx ? cluster.nginx.pids() : []),
        pgRoundTrips: () => (backend ? (backend.proxy?.roundTrips() ?? NaN) : 0),
        redisCalls: async () => (backend ? backend.redisCalls() : 0),
      };
    };
    const targets = [await target(SQLITE, sqlite, false), await target(POSTGRES, postgres, false, forPostgres), await target(NGINX3, three, true, forThree)];

    const results: Record<string, Record<number, Round[]>> = {};
    const unavailable: Record<string, string> = {};
    for (const c of [1, 32] as const) {
      const sessions = new Map<string, Session>();
      for (const t of targets) {
        try {
          const s = await openSession({ name: t.name, url: t.url, token: t.token }, c);
          await load(s, c, WARMUP);
          sessions.set(t.name, s);
        } catch (err) {
          unavailable[t.name] = (err as Error).message.slice(0, 160);
          if (!asJson) console.error(`  c=${c} ${t.name}: not measured: ${unavailable[t.name]}`);
        }
      }
      const measured = targets.filter((t) => sessions.has(t.name));
      for (let round = 0; round < ROUNDS; round++) {
        // Rotate the order every round, so drift in the machine's load is spread over every target.
        for (const t of measured.map((_, i) => measured[(i + round) % measured.length]!)) {
          const s = sessions.get(t.name)!;
          const cpu0 = sumCpu(t.wardenPids());
          const nginx0 = sumCpu(t.nginxPids());
          const pgCpu0 = cpuSnapshot();
          const pg0 = t.pgRoundTrips();
          const redis0 = await t.redisCalls();
          const m = await load(s, c, REQUESTS[c]);
          const n = REQUESTS[c];
          const r: Round = {
            rps: m.rps, p50: m.p50, p95: m.p95,
            cpu: (sumCpu(t.wardenPids()) - cpu0) / n,
            nginxCpu: t.nginxPids().length ? (sumCpu(t.nginxPids()) - nginx0) / n : NaN,
            pgCpu: cpuSince(pgCpu0) / n,
            pg: (t.pgRoundTrips() - pg0) / n,
            redis: (await t.redisCalls() - redis0) / n,
          };
          ((results[t.name] ??= {})[c] ??= []).push(r);
          if (!asJson) console.error(`  c=${c} round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(3)} ms, CPU ${r.cpu.toFixed(3)} ms/req (PostgreSQL server ${r.pgCpu.toFixed(3)}), PostgreSQL ${r.pg.toFixed(2)} and Redis ${r.redis.toFixed(2)} round trips/call`);
        }
      }
      for (const s of sessions.values()) await closeSession(s).catch(() => {});
    }

    const summary: Record<string, Record<number, Round>> = {};
    for (const [name, byC] of Object.entries(results)) {
      summary[name] = {};
      for (const [c, rounds] of Object.entries(byC)) {
        const pick = (k: keyof Round) => median(rounds.map((r) => r[k]));
        summary[name]![Number(c)] = { rps: pick('rps'), p50: pick('p50'), p95: pick('p95'), cpu: pick('cpu'), nginxCpu: pick('nginxCpu'), pgCpu: pick('pgCpu'), pg: pick('pg'), redis: pick('redis') };
      }
    }
    const ratios: Record<string, number> = {};
    for (const c of [1, 32]) {
      // Paired per round: each round's PostgreSQL throughput over SQLite's in the same round.
      const a = results[SQLITE]?.[c];
      const b = results[POSTGRES]?.[c];
      if (a && b) ratios[`c${c} PostgreSQL+Redis / SQLite throughput (goal >= 0.85), paired per round`] = median(b.map((r, i) => r.rps / a[i]!.rps));
      const n3 = results[NGINX3]?.[c];
      if (n3 && b) ratios[`c${c} 3 instances behind nginx / 1 instance PostgreSQL+Redis throughput, paired per round`] = median(n3.map((r, i) => r.rps / b[i]!.rps));
    }
    const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version };
    if (asJson) {
      console.log(JSON.stringify({ machine, rounds: ROUNDS, requests: REQUESTS, summary, ratios, unavailable }, null, 2));
    } else {
      const f = (v: number, d = 3) => (Number.isNaN(v) ? '–' : v.toFixed(d));
      console.log(`machine: ${machine.cpus} CPUs (${machine.cpu}), ${machine.memoryGb} GB, Node ${machine.node}; ${ROUNDS} rounds, median shown`);
      console.log('| target | c | req/s | p50 ms | p95 ms | CPU ms/req (mcp-warden) | CPU ms/req (nginx) | CPU ms/req (PostgreSQL server) | PostgreSQL round trips/call | Redis round trips/call |');
      console.log('|---|---|---|---|---|---|---|---|---|---|');
      for (const [name, byC] of Object.entries(summary)) for (const [c, r] of Object.entries(byC)) console.log(`| ${name} | ${c} | ${r.rps.toFixed(0)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.cpu)} | ${f(r.nginxCpu)} | ${f(r.pgCpu)} | ${f(r.pg, 2)} | ${f(r.redis, 2)} |`);
      for (const [name, why] of Object.entries(unavailable)) console.log(`| ${name} | – | not measured: ${why} | | | | | | | |`);
      console.log('\nratios:');
      for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(3)}`);
    }
  } finally {
    for (const c of clusters) await c.stop();
    await forPostgres.close();
    await forThree.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} finally {
  stopChildren();
}
