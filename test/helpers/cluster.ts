/**
 * A deployment of N real `mcp-warden start` processes (bin/mcp-warden.js, each its own Node
 * process) on one PostgreSQL schema and one Redis key prefix, both unique to the test, with
 * Debian's nginx round-robin in front (test/helpers/nginx.ts). The public URL is nginx's, as in
 * production behind a load balancer; each instance also answers on its own port (the loopback
 * Host at the listening port is always served), so a test can pin a client to one instance.
 *
 * Servers: `/mcp` an HTTP upstream given by the test (it lives outside every instance, as a real
 * upstream does), `/mcp/stdio` the tiny stdio server (a child per session, owned by one instance),
 * `/mcp/secret` the same HTTP upstream with the caller's per-user secret in `X-User-Secret`. Each
 * server has a policy, so every MCP request is decided and audited (into PostgreSQL).
 *
 * Instances can be killed with SIGKILL (no shutdown code runs) and started again on their port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { freePort } from './free-port.ts';
import { startNginx, waitForPort, type AccessLogLine, type Nginx } from './nginx.ts';
import { TEST_POSTGRES_URL } from './postgres.ts';
import { TEST_REDIS_URL, testKeyPrefix } from './redis.ts';
import { waitFor } from './wait-for.ts';

const BIN = join(import.meta.dirname, '../../bin/mcp-warden.js');
const TINY = join(import.meta.dirname, '../gateway/fixtures/tiny-server.mjs');

export const CLUSTER_PASSWORD = 'correct horse battery staple';
export const CLUSTER_AGENT_SECRET = 'agent-secret-0123456789abcdefghij';

export interface Instance {
  index: number;
  port: number;
  /** `http://127.0.0.1:<port>`: this instance alone, bypassing nginx. */
  url: string;
  /** The current process (a new one after `restart`). */
  child: ChildProcess;
  /** Everything the current and earlier processes of this instance wrote (stdout + stderr). */
  log(): string;
}

export interface ClusterOptions {
  instances?: number;
  /** The HTTP MCP upstream of /mcp and /mcp/secret. */
  upstreamUrl: string;
  /** PostgreSQL to use (e.g. a cuttable proxy in front of the test server). */
  postgresUrl?: string;
  /** Added to `storage.postgres` (e.g. `queryTimeoutMs`). */
  postgres?: Record<string, unknown>;
  /** Redis to use (e.g. a redis-server of the test's own); `false`: no cluster.redis. */
  redisUrl?: string | false;
  /** Added to the embedded authorization server's settings. */
  embedded?: Record<string, unknown>;
  /** Added to the top level of the configuration (e.g. `trustProxy`). */
  extra?: Record<string, unknown>;
  dirPrefix?: string;
  /** `sqlite`: one file in the temp dir instead of PostgreSQL (one instance only; benchmarks). */
  storage?: 'postgres' | 'sqlite';
  /** `direct`: no nginx, the public URL is the instance's own (one instance only; benchmarks). */
  front?: 'nginx' | 'direct';
  /** pino level of the instances (default info, which the fault tests read). */
  logLevel?: string;
}

export interface Cluster {
  /** nginx's URL: the public URL of every instance (the instance's own with `front: 'direct'`). */
  front: string;
  /** Throws with `front: 'direct'`. */
  readonly nginx: Nginx;
  instances: Instance[];
  dir: string;
  configFile: string;
  schema: string;
  keyPrefix: string;
  /** SIGKILL, and wait until the process is gone. */
  kill(index: number): Promise<void>;
  /** Starts the instance again on its port and waits until it listens. */
  restart(index: number): Promise<void>;
  /** SIGTERM to every instance (they flush and close), and wait until they are gone; nginx stays. */
  stopInstances(): Promise<void>;
  /** Requests each instance (by index) served among nginx's access-log lines after the first `from`, optionally only those matching `filter`. */
  hitsPerInstance(from: number, filter?: (line: AccessLogLine) => boolean): number[];
  /** A query on the deployment's schema (a connection of its own, closed after). */
  query<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts the deployment: the first instance alone (it creates the schema and seeds), then the others at once. */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const n = o.instances ?? 3;
  const dir = mkdtempSync(join(tmpdir(), o.dirPrefix ?? 'warden-cluster-'));
  const schema = `warden_test_${randomBytes(6).toString('hex')}`;
  const keyPrefix = testKeyPrefix();
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  if ((o.storage === 'sqlite' || o.front === 'direct') && n !== 1) throw new Error('sqlite storage and a direct front need exactly one instance');
  const nginx = o.front === 'direct' ? undefined : await startNginx({ dir: join(dir, 'nginx'), upstreams: ports });
  const front = nginx?.url ?? `http://127.0.0.1:${ports[0]}`;
  const hopSecret = randomBytes(32).toString('base64');
  const keyFile = join(dir, 'secrets.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });

  const policy = (tools: string[]) => ({ mode: 'first-match', default: 'deny', rules: [{ name: 'tools', tools, scopes: ['notes:read'] }] });
  const server = (name: string, path: string, upstream: unknown, extra: Record<string, unknown> = {}) => ({
    name, path, upstream, scopes: ['notes:read', 'notes:write'], requiredScopes: ['notes:read'], policy: policy(['*']), ...extra,
  });
  const configFor = (port: number) => ({
    listen: { host: '127.0.0.1', port },
    publicUrl: front,
    log: { level: o.logLevel ?? 'info' },
    storage: o.storage === 'sqlite'
      ? { sqlite: { path: join(dir, 'warden.db') } }
      : { postgres: { url: o.postgresUrl ?? TEST_POSTGRES_URL, schema, maxConnections: 8, ...o.postgres } },
    // The same hop secret on every instance: a stdio session's requests are forwarded to the
    // instance that holds its child (src/cluster/instance-hop.ts; instanceUrl defaults to loopback:port).
    ...(o.redisUrl === false ? {} : { cluster: { redis: { url: o.redisUrl ?? TEST_REDIS_URL, keyPrefix }, secret: hopSecret } }),
    authorizationServer: { embedded: { demo: true, ...o.embedded } },
    servers: [
      server('http', '/mcp', { http: { url: o.upstreamUrl } }),
      server('stdio', '/mcp/stdio', { stdio: { command: process.execPath, args: [TINY] } }),
      server('secret', '/mcp/secret', { http: { url: o.upstreamUrl } }, {
        downstream: { perUserSecret: { header: 'X-User-Secret', key: { file: keyFile } } },
      }),
    ],
    ...o.extra,
  });
  // One configuration file per instance (they differ in the port only); instance 0's is the one
  // CLI commands (`mcp-warden secrets`, `audit`) read.
  const files = ports.map((port, i) => {
    const file = join(dir, `warden-${i}.json`);
    writeFileSync(file, JSON.stringify(configFor(port), null, 2));
    return file;
  });

  const logs = ports.map((_, i) => join(dir, `instance-${i}.log`));
  const instances: Instance[] = [];
  const launch = async (i: number): Promise<ChildProcess> => {
    const out = createWriteStream(logs[i]!, { flags: 'a' });
    const child = spawn(process.execPath, [BIN, 'start', '--config', files[i]!], {
      env: {
        PATH: process.env.PATH, HOME: dir, NODE_NO_WARNINGS: '1',
        WARDEN_DEMO_PASSWORD: CLUSTER_PASSWORD, WARDEN_DEMO_CLIENT_SECRET: CLUSTER_AGENT_SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    // 'close': the process is gone and both pipes are drained.
    child.once('close', () => out.end());
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`instance ${i} exited at start (${code ?? signal}):\n${readFileSync(logs[i]!, 'utf8').slice(-3000)}`))));
    exited.catch(() => {});
    await Promise.race([waitForPort(ports[i]!, 60_000), exited]);
    // Listening is not serving yet: it answers 503 while it starts (src/http). Wait for a 200.
    await Promise.race([waitForOk(`http://127.0.0.1:${ports[i]}/.well-known/oauth-authorization-server`), exited]);
    return child;
  };
  const makeInstance = (i: number, child: ChildProcess): Instance => ({
    index: i, port: ports[i]!, url: `http://127.0.0.1:${ports[i]}`, child,
    log: () => readFileSync(logs[i]!, 'utf8'),
  });

  try {
    instances.push(makeInstance(0, await launch(0)));
    const rest = await Promise.all(ports.slice(1).map((_, k) => launch(k + 1)));
    rest.forEach((child, k) => instances.push(makeInstance(k + 1, child)));
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    await nginx?.stop();
    throw err;
  }

  const cluster: Cluster = {
    front, instances, dir, configFile: files[0]!, schema, keyPrefix,
    get nginx() {
      if (!nginx) throw new Error('this cluster has no nginx (front: direct)');
      return nginx;
    },
    hitsPerInstance(from, filter) {
      const counts = cluster.nginx.hitsByPort(from, filter);
      return instances.map((x) => counts.get(x.port) ?? 0);
    },
    async kill(i) {
      const { child } = instances[i]!;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    },
    async restart(i) {
      instances[i]!.child = await launch(i);
    },
    async query<T extends pg.QueryResultRow>(sql: string, values?: unknown[]) {
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`SET search_path TO ${schema}`);
        return (await client.query<T>(sql, values)).rows;
      } finally {
        await client.end();
      }
    },
    async stopInstances() {
      await Promise.all(instances.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(timer);
      }));
    },
    async stop() {
      await cluster.stopInstances();
      await nginx?.stop();
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect().then(() => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).catch(() => {});
      await client.end().catch(() => {});
      if (!process.env.WARDEN_KEEP_CLUSTER_DIR) rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

async function waitForOk(url: string, timeoutMs = 60_000): Promise<void> {
  const ok = () => fetch(url).then((r) => { void r.arrayBuffer(); return r.status === 200; }, () => false);
  await waitFor(ok, `${url} to answer 200`, { timeoutMs, intervalMs: 100 });
}

export interface OwnRedis {
  url: string;
  port: number;
  /** SIGKILL: Redis gone as in a crash (it keeps nothing: no RDB, no AOF). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A redis-server of the test's own on a free port, in a temp dir: the outage tests stop and start
 * it, which they must never do to the Redis other test files share.
 */
export async function startOwnRedis(dir: string): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const logFile = join(dir, 'redis-server.log');
  const start = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logFile], { stdio: 'ignore' });
    child = c;
    children.add(c);
    const failed = (why: string) => {
      let log = '';
      try { log = readFileSync(logFile, 'utf8').slice(-1500); } catch { /* not written */ }
      return new Error(`redis-server on port ${port} did not start (${why}):\n${log}`);
    };
    const exited = new Promise<never>((_, reject) => {
      c.once('exit', (code, signal) => reject(failed(`exited: ${code ?? signal}`)));
      // Not installed: no 'exit', only 'error'.
      c.once('error', (err) => reject(failed(err.message)));
    });
    exited.catch(() => {});
    await Promise.race([waitForPort(port), exited]);
    // Something listening is not yet this Redis: had another process taken the port while it was
    // down, redis-server would have failed to bind and the test would talk to that process. So
    // the port must answer INFO as Redis does, with this child's process ID.
    const probe = createClient({ url: `redis://127.0.0.1:${port}`, socket: { connectTimeout: 2000, reconnectStrategy: false } });
    probe.on('error', () => {});
    const info = await probe.connect().then(() => probe.info('server'), () => '').catch(() => '').finally(() => probe.destroy());
    if (!info.includes(`process_id:${c.pid}\r\n`)) {
      c.kill('SIGKILL');
      throw failed(`port ${port} is not answered by this redis-server (process ${c.pid})`);
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await gone;
    children.delete(c);
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, kill, start, stop: kill };
}
