/**
 * App composition: one `node:http` server that routes to the embedded authorization server
 * (when configured), the protected resource metadata and the gateway's MCP endpoints.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { JSONWebKeySet } from 'jose';
import { prepareAccountArea, type AccountArea } from './account/index.ts';
import { createAuditSink } from './audit/index.ts';
import type { Config } from './config/schema.ts';
import { createDownstreamCredentials, WARDEN_JWKS_PATH } from './downstream/index.ts';
import { createGateway, type Gateway } from './gateway/index.ts';
import { GatewayError, sendGatewayError } from './gateway/errors.ts';
import { createTokenVerifier } from './gateway/token-verifier.ts';
import { drain } from './http/drain.ts';
import { createHostPolicy, sendMisdirected } from './http/host.ts';
import { describeError, silentLogger, type Logger } from './log.ts';
import { sendStartingUp } from './http/starting-up.ts';
import { createReadinessCheck, handleHealth, isHealthPath, PING_TIMEOUT_MS, type IssuerState, type Readiness } from './http/health.ts';
import { configWarnings } from './config/warnings.ts';
import type { AuthorizationServerExtension } from './authorization-server/extension.ts';
import { openStorage } from './storage/index.ts';
import { openCluster } from './cluster/index.ts';
import { coalesceReloads } from './cluster/key-notices.ts';
import { UserStore } from './users/user-store.ts';

/** What app composition needs from the embedded authorization server; `createAuthorizationServer` returns more. */
export interface EmbeddedAuthorizationServer {
  issuer: string;
  handles(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  publicJwks(): JSONWebKeySet;
  /** Picks up a signing key added by `mcp-warden keys rotate` (src/authorization-server/keys-reload.ts). */
  reloadSigningKeys(): Promise<{ changed: boolean; kids: string[] }>;
  /** RFC 7009 §2.1: revoked access tokens, and every access token of a revoked grant, user or client. */
  revocations: { isRevoked(claims: Record<string, unknown>): boolean };
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** The environment (stdio children take PATH/HOME/LANG from it; downstream credentials read it). */
  env?: NodeJS.ProcessEnv;
  /** Where the embedded authorization server prints generated demo secrets, once (default stderr). */
  announce?: (line: string) => void;
  /** Extensions of the embedded authorization server (grant types, middleware), run at start-up. */
  authorizationServerExtensions?: AuthorizationServerExtension[];
}

export interface Warden {
  /** The URL the server listens on (http://host:port). */
  url: string;
  port: number;
  server: Server;
  config: Config;
  gateway: Gateway;
  /** Writes queued audit events now (they are otherwise written every 100 ms) and resolves when SQLite has them, e.g. before reading the trail back. */
  flushAudit(): Promise<void>;
  /**
   * Embedded AS: signs with a key `mcp-warden keys rotate` added, without a restart (SIGHUP in
   * `mcp-warden start`). `changed: false` when the keys are unchanged or the AS is external.
   */
  reloadSigningKeys(): Promise<{ changed: boolean; kids: string[] }>;
  /**
   * Stops: `/readyz` 503, no new session, and every answer says `Connection: close`; with
   * `drainMs`, requests already sent upstream get up to that long to be answered while the
   * instance still listens (src/http/drain.ts); then it stops listening, every session ends, the
   * audit trail is flushed and storage closed.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts mcp-warden. Given a function, it listens on an ephemeral port first and builds the
 * configuration with the real port, so publicUrl and issuer match (tests, `PORT=0`).
 */
export async function startWarden(configOrFactory: Config | ((port: number) => Config), options: StartOptions = {}): Promise<Warden> {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  // The response in progress on each connection, so a parser error after it started is not
  // answered with a second status line in the middle of it.
  const inProgress = new WeakMap<Socket, ServerResponse>();
  // /livez and /readyz answer from the first moment, before the Host allow-list (src/http/health.ts).
  let readiness: (() => Promise<Readiness>) | 'starting' | 'stopping' = 'starting';
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    inProgress.set(req.socket, res);
    // Stopping: a client reuses no connection to this instance (RFC 9112 §9.6).
    if (readiness === 'stopping') res.setHeader('Connection', 'close');
    const path = pathOf(req.url ?? '/');
    if (isHealthPath(path)) handleHealth(req, res, path, readiness);
    else if (handler) handler(req, res);
    else sendStartingUp(res, path);
  });
  // Requests the HTTP parser refuses (a malformed chunk size, oversized headers) are answered
  // as Node would (400, 431, 408) and reported through the JSON logger, never raw to stderr.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (err.code === 'ECONNRESET' || !socket.writable) logger.debug({ event: 'client_error', code: err.code }, 'client connection reset');
    else logger.warn({ event: 'client_error', code: err.code, err: describeError(err) }, 'malformed HTTP request refused');
    const current = inProgress.get(socket as Socket);
    const midResponse = current !== undefined && current.headersSent && !current.writableFinished;
    if (socket.writable && !midResponse) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });
  // requestTimeout bounds receiving a request (headers and body), not a long SSE response.
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;

  let config: Config;
  let port: number;
  if (typeof configOrFactory === 'function') {
    const probe = configOrFactory(0);
    port = await listen(server, probe.listen.host, 0);
    config = configOrFactory(port);
  } else {
    config = configOrFactory;
    port = await listen(server, config.listen.host, config.listen.port);
  }

  const closers: (() => Promise<void> | void)[] = [];
  try {
    // Every durable store on the configured backend: SQLite (the embedded default) or PostgreSQL.
    const storage = await openStorage(config);
    closers.push(() => storage.close());
    // cluster.redis: what the instances of a deployment share beyond the database; never waits for Redis.
    const cluster = openCluster(config, logger, port);
    if (cluster) closers.unshift(() => cluster.close());
    const as = config.authorizationServer;
    // The account page (users store their own downstream credentials) registers its client at the embedded AS.
    const account = await prepareAccountArea({ config, storage: storage.downstream, env, logger, ...(cluster ? { sessions: cluster.accountSessions } : {}) });
    let authorizationServer: EmbeddedAuthorizationServer | undefined;
    let userCount: number | undefined;
    if ('embedded' in as) {
      const users = new UserStore(storage.users, as.embedded.roles);
      userCount = await users.count();
      // Loaded on demand: external-issuer deployments never load oidc-provider.
      const { createAuthorizationServer } = await import('./authorization-server/index.ts');
      authorizationServer = await createAuthorizationServer({
        config,
        store: storage.as,
        settings: storage.downstream.settings,
        users,
        logger: logger.child({ component: 'authorization-server' }),
        env,
        ...(options.announce ? { announce: options.announce } : {}),
        ...account?.authorizationServer,
        extensions: [...account?.authorizationServer.extensions ?? [], ...options.authorizationServerExtensions ?? []],
        // RFC 7009 §2.1: a revocation here reaches every instance's verified-token cache; the
        // registration limit and the sign-in backoff are one for the whole deployment.
        ...(cluster ? { revocationBus: cluster.revocationBus, sharedRateLimiter: cluster.rateLimiter, sharedBackoff: cluster.backoff } : {}),
      });
      closers.unshift(() => authorizationServer!.close());
    }
    // RFC 7517 §5: a signing-key change announced by another process (keys rotate, a SIGHUP'd
    // instance) is picked up now, not at the next key check (src/cluster/key-notices.ts).
    const embeddedAs = authorizationServer;
    let reloadSigningKeys = () => embeddedAs?.reloadSigningKeys() ?? Promise.resolve({ changed: false, kids: [] as string[] });
    if (cluster && embeddedAs) {
      // A reload still running when the instance stops fails as the storage closes: not reported.
      const onNotice = coalesceReloads(() => embeddedAs.reloadSigningKeys(), (err) => { if (readiness !== 'stopping') logger.error({ event: 'key_notice_reload_failed', err: describeError(err) }, 'signing key reload after a key notice failed; the next key check retries'); });
      closers.unshift(cluster.keyNotices.subscribe(onNotice));
      // A change this instance found itself (SIGHUP, an unknown kid) is announced to the others.
      reloadSigningKeys = async () => {
        const result = await embeddedAs.reloadSigningKeys();
        if (result.changed) await cluster.keyNotices.publish({ kids: result.kids });
        return result;
      };
    }
    // A server that starts but cannot work says so once, naming the key (config/warnings.ts).
    for (const warning of configWarnings(config, { env, userCount })) logger.warn({ event: 'config_warning', key: warning.key }, warning.message);
    const audit = createAuditSink(config, storage.audit, { logger });
    closers.unshift(() => audit.close());
    const downstream = await createDownstreamCredentials({ config, storage: storage.downstream, logger, env, ...(account ? { accountPageUrl: account.url } : {}) });
    const revocations = authorizationServer?.revocations;
    // Closing ends the issuer's fetches in flight (the one at start may wait on a silent IdP for
    // its whole timeout, and would keep a stopped process alive until then).
    const issuerFetches = new AbortController();
    closers.unshift(() => issuerFetches.abort());
    const verifier = createTokenVerifier({
      config,
      signal: issuerFetches.signal,
      publicJwks: authorizationServer ? () => authorizationServer.publicJwks() : undefined,
      // Another instance on the same database may have rotated the signing key first.
      ...(authorizationServer ? { reloadKeys: reloadSigningKeys } : {}),
      // RFC 7009 §2.1: a token the embedded AS revoked, or one of a revoked grant, user or client,
      // is refused at once: answered from memory, synchronously (revocation.ts).
      ...(revocations ? { isRevoked: (claims: Record<string, unknown>) => revocations.isRevoked(claims) } : {}),
    });
    // An external issuer's metadata and keys are fetched now, in the background, not on the first
    // request's path (with a remote IdP that is two or three round trips per instance start):
    // /readyz waits for this first fetch to end, not for it to succeed. An issuer that cannot be
    // reached is reported at start, and each verification tries again.
    let issuerState: IssuerState = 'loading';
    verifier.warm().then(() => { issuerState = 'ok'; }, (err: unknown) => {
      issuerState = 'unavailable';
      if (issuerFetches.signal.aborted) return;
      logger.warn({ event: 'issuer_unavailable_at_start', err: describeError(err) }, 'the authorization server\'s metadata or keys could not be fetched at start; access tokens are verified once it answers');
    });
    // cluster: a session opened on one instance is served by every instance (src/cluster/session-routing.ts).
    const gateway = createGateway({ config, verifier, audit, downstream, logger: logger.child({ component: 'gateway' }), env, sessionSharing: cluster?.sessions });
    closers.unshift(() => gateway.close());
    const loopback = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host === '::' ? '[::1]' : config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    const accountArea: AccountArea | undefined = account?.start(`http://${loopback}:${port}`);

    const hostAllowed = createHostPolicy({ publicUrl: config.publicUrl, allowedHosts: config.allowedHosts, listenHost: config.listen.host, port });
    handler = (req, res) => {
      // DNS-rebinding defence in depth, before any route or credential is looked at (src/http/host.ts).
      if (!hostAllowed(req)) return sendMisdirected(res);
      const raw = req.url ?? '/';
      const q = raw.indexOf('?');
      const pathname = pathOf(raw);
      const query = q === -1 ? '' : raw.slice(q + 1);
      // Protected resource metadata and MCP endpoints first: their paths never collide with the AS's.
      if (gateway.handles(pathname)) {
        gateway.handle(req, res, pathname, query);
      } else if (pathname === WARDEN_JWKS_PATH) {
        // The keys upstreams use to verify the gateway's identity assertions (docs/downstream.md).
        downstream.jwksHandler(req, res);
      } else if (accountArea?.handles(pathname)) {
        accountArea.handle(req, res, pathname, query);
      } else if (authorizationServer?.handles(pathname)) {
        authorizationServer.handle(req, res);
      } else {
        sendGatewayError(res, new GatewayError('not_found', 'Not Found'));
      }
    };

    const backend = storage.audit;
    readiness = createReadinessCheck({
      // SQLite is a file this process holds open; PostgreSQL is asked.
      // Given up with the probe: a frozen database holds no pool slot longer.
      pingStorage: backend.kind === 'postgres' ? () => backend.db.query('warden_readiness', 'SELECT 1', undefined, PING_TIMEOUT_MS) : async () => undefined,
      ...(cluster ? { redisReady: () => cluster.connection.isReady() } : {}),
      ...('external' in config.authorizationServer ? { issuerState: () => issuerState } : {}),
    });

    let closing: Promise<void> | undefined;
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    return {
      url: `http://${host}:${port}`,
      port,
      server,
      config,
      gateway,
      flushAudit: () => audit.flush(),
      reloadSigningKeys,
      close(options = {}) {
        closing ??= (async () => {
          // /readyz answers 503 (the balancer takes the instance out), every answer from now on
          // closes its connection, and no session is opened (src/http/drain.ts).
          readiness = 'stopping';
          gateway.stop();
          // While requests in flight upstream are answered (drainMs), the instance still listens:
          // what a drained call may wait for comes on new connections too (the client's answer
          // to an elicitation or sampling request, a cancellation, a stream resumed), as may a
          // peer's hop. Idle keep-alive connections are left open meanwhile: closing one races
          // a client that reuses it at that moment (its request fails unanswered), where a
          // request that arrives on it is answered with `Connection: close`.
          const pending = gateway.pendingRequests();
          if (options.drainMs && pending > 0) {
            logger.info({ event: 'shutdown_drain', pending, drain_ms: options.drainMs }, `waiting up to ${options.drainMs} ms for ${pending} request(s) in flight to be answered`);
            const { left, waitedMs } = await drain(() => gateway.pendingRequests(), options.drainMs);
            if (left > 0) logger.warn({ event: 'shutdown_drain_ended', left, waited_ms: waitedMs }, `${left} request(s) still in flight after the drain: their clients get an error`);
            else logger.info({ event: 'shutdown_drained', waited_ms: waitedMs }, 'every request in flight was answered');
          }
          // Then: no new connection, sessions end (children killed), audit flushed, storage closed.
          const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
          for (const c of closers) await c();
          server.closeAllConnections();
          await stopped;
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const c of closers) await c();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
}
