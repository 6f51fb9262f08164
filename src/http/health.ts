/**
 * Health checks for a load balancer or an orchestrator (docs/deployment.md "Health checks"):
 *
 *   GET /livez   200 while the process answers at all, start-up included: restart only a
 *                process that no longer answers, never one that is still opening its database.
 *   GET /readyz  200 when the instance can serve: started, its database answers (PostgreSQL:
 *                `SELECT 1` within 2 s; SQLite is a local file), and, with an external issuer,
 *                the first fetch of its metadata and keys has ended (`starting` until then: at
 *                most the fetches' timeouts, ~30 s against an issuer that never answers). 503
 *                otherwise.
 *
 * Redis is reported but does not make an instance unready: every instance shares one Redis, so
 * failing readiness on a Redis outage would take the whole deployment out of the balancer at
 * once, while an instance without Redis still serves (docs/deployment.md "What needs Redis"). An
 * external issuer likewise: readiness waits for its first fetch to end, so a new instance gets no
 * request it would hold up for the IdP's round trips, but not for it to succeed (bounded by the
 * fetches' timeouts), since every instance depends on the one IdP.
 *
 * Both answer before the Host allow-list (a kubelet probes the pod's address, which is neither
 * the public host nor loopback) and carry nothing but these states: no version, no hostnames,
 * no error messages. The database answer is cached for one second so a flood of probes costs at
 * most one query per second.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const LIVENESS_PATH = '/livez';
export const READINESS_PATH = '/readyz';

/** How long a database check result is reused. */
const CACHE_MS = 1000;
/** The longest the database may take to answer `SELECT 1`. */
export const PING_TIMEOUT_MS = 2000;

export type DependencyState = 'ok' | 'unavailable' | 'not configured';
/** An external issuer's metadata and keys: `loading` until the first fetch at start has ended. */
export type IssuerState = 'loading' | 'ok' | 'unavailable';

export interface Readiness {
  ready: boolean;
  storage: DependencyState;
  redis: DependencyState;
  /** Only with an external issuer. */
  issuer?: IssuerState;
}

export interface ReadinessSources {
  /** Resolves when the database answers; rejects (or never settles) when it does not. */
  pingStorage: () => Promise<unknown>;
  /** undefined without `cluster.redis`. */
  redisReady?: () => boolean;
  /** undefined with the embedded authorization server. */
  issuerState?: () => IssuerState;
  now?: () => number;
}

/** The readiness of a started instance, its database check cached for CACHE_MS. */
export function createReadinessCheck({ pingStorage, redisReady, issuerState, now = Date.now }: ReadinessSources): () => Promise<Readiness> {
  let cached: { at: number; storage: Promise<DependencyState> } | undefined;
  const storage = (): Promise<DependencyState> => {
    if (cached && now() - cached.at < CACHE_MS) return cached.storage;
    let timer: NodeJS.Timeout | undefined;
    const result = Promise.race([
      pingStorage().then((): DependencyState => 'ok'),
      new Promise<DependencyState>((resolve) => { timer = setTimeout(() => resolve('unavailable'), PING_TIMEOUT_MS).unref(); }),
    ]).catch((): DependencyState => 'unavailable').finally(() => clearTimeout(timer));
    cached = { at: now(), storage: result };
    return result;
  };
  return async () => {
    const s = await storage();
    const redis: DependencyState = redisReady ? (redisReady() ? 'ok' : 'unavailable') : 'not configured';
    if (!issuerState) return { ready: s === 'ok', storage: s, redis };
    const issuer = issuerState();
    return { ready: s === 'ok' && issuer !== 'loading', storage: s, redis, issuer };
  };
}

function send(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Whether `pathname` is a health check (answered before the Host allow-list). */
export function isHealthPath(pathname: string): boolean {
  return pathname === LIVENESS_PATH || pathname === READINESS_PATH;
}

/**
 * Answers a health check; `readiness` is the state's name while the instance is starting up or
 * shutting down (a draining instance leaves the balancer before it stops listening).
 * @see RFC 9110 §15.6.4 (503 Service Unavailable)
 */
export function handleHealth(req: IncomingMessage, res: ServerResponse, pathname: string, readiness: (() => Promise<Readiness>) | 'starting' | 'stopping'): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, { status: 'method not allowed' });
  }
  if (pathname === LIVENESS_PATH) return send(res, 200, { status: 'alive' });
  if (typeof readiness === 'string') return send(res, 503, { status: readiness });
  readiness().then(
    // Still fetching the issuer's keys, with everything else in place: starting, not failing.
    (r) => send(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : r.storage === 'ok' && r.issuer === 'loading' ? 'starting' : 'unavailable', storage: r.storage, redis: r.redis, ...(r.issuer ? { issuer: r.issuer } : {}) }),
    () => send(res, 503, { status: 'unavailable' }),
  );
}
