/**
 * The gateway: the resource server in front of every configured MCP server. It serves each
 * server's Streamable HTTP endpoint and its RFC 9728 protected resource metadata.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditSink } from '../audit/types.ts';
import type { Config } from '../config/schema.ts';
import type { DownstreamCredentials } from '../downstream/types.ts';
import type { Logger } from '../log.ts';
import { createServerPolicy } from '../policy/index.ts';
import { GatewayError, sendGatewayError } from './errors.ts';
import { createOriginPolicy } from './origin.ts';
import { buildProtectedResourceMetadata } from './protected-resource-metadata.ts';
import { protectedResourceMetadataPath, ROOT_METADATA_PATH } from '../kernel/resource-uri.ts';
import { createServerEndpoint, type ServerEndpoint } from './server-endpoint.ts';
import type { TokenVerifier } from './token-verifier.ts';
import { createHttpUpstream } from './upstreams/http.ts';
import { createStdioUpstream } from './upstreams/stdio.ts';
import { createStdioPool } from './upstreams/stdio-pool.ts';
import type { Upstream } from './upstreams/types.ts';
import type { SessionSharingFactory } from './steps/context.ts';

export interface GatewayOptions {
  config: Config;
  verifier: TokenVerifier;
  audit: AuditSink;
  downstream: DownstreamCredentials;
  logger: Logger;
  /** The gateway's environment: only PATH, HOME and LANG are read from it, for stdio children. */
  env: NodeJS.ProcessEnv;
  /** Sessions shared across instances (`cluster.redis`, src/cluster/session-routing.ts). */
  sessionSharing?: SessionSharingFactory | undefined;
}

export interface Gateway {
  /** Whether `pathname` is a server endpoint or a protected resource metadata document. */
  handles(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, pathname: string, query: string): void;
  /** Endpoints by server path. */
  readonly endpoints: ReadonlyMap<string, ServerEndpoint>;
  /** Requests sent to upstream servers (or to the instance holding their session) and not answered yet. */
  pendingRequests(): number;
  /** The instance is stopping: every endpoint refuses `initialize` and closes connections after the answers it still owes. */
  stop(): void;
  close(): Promise<void>;
}

/**
 * Builds the gateway for every server of the configuration.
 * @see https://www.rfc-editor.org/rfc/rfc9728
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { config, logger } = options;
  const checkOrigin = createOriginPolicy(config.publicUrl, config.allowedOrigins);
  const endpoints = new Map<string, ServerEndpoint>();
  const metadata = new Map<string, string>();

  for (const server of config.servers) {
    const upstream: Upstream =
      'stdio' in server.upstream
        ? (server.upstream.stdio.share === 'per-user' ? createStdioPool : createStdioUpstream)({ server, stdio: server.upstream.stdio, logger, downstream: options.downstream, env: options.env })
        : createHttpUpstream({ server, http: server.upstream.http, logger, downstream: options.downstream });
    endpoints.set(
      server.path,
      createServerEndpoint({ config, server, verifier: options.verifier, upstream, policy: createServerPolicy(server), audit: options.audit, downstream: options.downstream, logger, checkOrigin, sessionSharing: options.sessionSharing }),
    );
    metadata.set(protectedResourceMetadataPath(server), JSON.stringify(buildProtectedResourceMetadata(config, server)));
  }
  // RFC 9728 §3.1 and MCP authorization §Protected Resource Metadata Discovery: clients probe the path-inserted document first, then the root one. The root document
  // can describe only one resource, so it is served when there is exactly one server.
  if (config.servers.length === 1 && !metadata.has(ROOT_METADATA_PATH)) {
    metadata.set(ROOT_METADATA_PATH, metadata.get(protectedResourceMetadataPath(config.servers[0]!))!);
  }

  function serveMetadata(req: IncomingMessage, res: ServerResponse, body: string): void {
    // RFC 9728 §3: public, and CORS-enabled so browser-based clients can discover (MCP authorization §Authorization Server Discovery).
    const cors = { 'Access-Control-Allow-Origin': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, OPTIONS', 'Access-Control-Allow-Headers': 'MCP-Protocol-Version' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendGatewayError(res, new GatewayError('method_not_allowed', 'Method Not Allowed', { allow: 'GET, HEAD, OPTIONS' }), { headers: cors });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300', 'Content-Length': String(Buffer.byteLength(body)), ...cors });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return {
    endpoints,
    handles(pathname) {
      return endpoints.has(pathname) || metadata.has(pathname);
    },
    handle(req, res, pathname, query) {
      const doc = metadata.get(pathname);
      if (doc !== undefined) {
        serveMetadata(req, res, doc);
        return;
      }
      const endpoint = endpoints.get(pathname);
      if (!endpoint) {
        sendGatewayError(res, new GatewayError('not_found', 'Not Found'));
        return;
      }
      void endpoint.handle(req, res, query);
    },
    pendingRequests() {
      let n = 0;
      for (const e of endpoints.values()) n += e.pendingRequests;
      return n;
    },
    stop() {
      for (const e of endpoints.values()) e.stop();
    },
    async close() {
      await Promise.all([...endpoints.values()].map((e) => e.close()));
    },
  };
}

export type { ServerEndpoint } from './server-endpoint.ts';
export type { TokenVerifier } from './token-verifier.ts';
export { createTokenVerifier } from './token-verifier.ts';
