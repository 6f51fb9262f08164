/**
 * The embedded defaults `npm start` runs on: SQLite, the built-in authorization server on the
 * gateway's origin, the demo notes server over stdio at /mcp and, when `startDemoApi` runs
 * beside it (`npm start` does), the demo notes API over HTTP at /mcp/api, reached with RFC 8693
 * token exchange.
 */
import { fileURLToPath } from 'node:url';
import { RECOMMENDED_RETENTION } from '../audit/schema.ts';
import { parseConfig } from './load.ts';
import type { Config } from './schema.ts';
import type { DemoApiTrust } from '../demo/notes-api.ts';

/** The demo notes API's identifier at the authorization server: the RFC 8693 `audience` the gateway asks for. */
export const DEMO_API_AUDIENCE = 'urn:mcp-warden:demo:notes-api';
/** Set by `startDemoApi`: the demo notes API's MCP endpoint, which turns on the /mcp/api server. */
const DEMO_API_URL_ENV = 'WARDEN_DEMO_API_URL';

/**
 * The command line that runs the demo notes server: plain node on a JavaScript file, no loader
 * (through tsx it cost ~38 MB PSS and ~0.5 s more per child; docs/benchmarks.md, "Footprint").
 */
export function demoServerCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: [fileURLToPath(new URL('../demo/notes-server.mjs', import.meta.url))] };
}

function listOf(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);
}

export function buildDemoConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT ? Number(env.PORT) : 8080;
  const publicUrl = env.WARDEN_PUBLIC_URL ?? `http://localhost:${port}`;
  const apiUrl = env[DEMO_API_URL_ENV];
  // RFC 8693 at the embedded AS: the gateway (its own confidential client, secret generated once
  // and kept in the database) exchanges a caller's token for one whose audience is the notes API,
  // narrowed to notes:read; the client's token itself never leaves the gateway.
  const tokenExchange = apiUrl ? { tokenExchange: { audiences: [{ audience: DEMO_API_AUDIENCE, scopes: ['notes:read'] }] } } : {};
  const apiServer = apiUrl
    ? [{
      name: 'notes-api',
      path: '/mcp/api',
      upstream: { http: { url: apiUrl } },
      scopes: ['notes:read'],
      requiredScopes: ['notes:read'],
      scopeDescriptions: { 'notes:read': 'Read your notes' },
      downstream: { tokenExchange: { audience: DEMO_API_AUDIENCE, scopes: ['notes:read'] } },
    }]
    : [];
  return parseConfig({
    listen: { host: env.HOST ?? '127.0.0.1', port },
    publicUrl,
    storage: { sqlite: { path: env.WARDEN_DB ?? './data/warden.db' } },
    // Retention is opt-in (keep forever by default, src/audit/schema.ts); the demo opts in to the recommended value.
    audit: { retention: RECOMMENDED_RETENTION },
    // CIMD §6: the demo fetches only https documents on public addresses, plus the origins named
    // in WARDEN_CIMD_ALLOWED_ORIGINS (comma-separated, e.g. a client under development on localhost).
    authorizationServer: { embedded: { demo: true, clientIdMetadataDocuments: { allowedOrigins: listOf(env.WARDEN_CIMD_ALLOWED_ORIGINS) }, ...tokenExchange } },
    servers: [
      {
        name: 'notes',
        path: '/mcp',
        upstream: { stdio: demoServerCommand() },
        scopes: ['notes:read', 'notes:write'],
        requiredScopes: ['notes:read'],
        scopeDescriptions: { 'notes:read': 'Read your notes', 'notes:write': 'Create and delete notes' },
        // Demo policy: members read; admins also write and see the admin resource and prompt.
        // First match, default deny: whatever no rule allows is refused (docs/policy.md).
        policy: {
          mode: 'first-match',
          default: 'deny',
          rules: [
            { name: 'read-tools', tools: ['list_notes', 'read_note', 'search_notes', 'whoami'], scopes: ['notes:read'] },
            { name: 'read-notes', resources: ['notes://note/*'], scopes: ['notes:read'] },
            { name: 'summarize', prompts: ['summarize'], scopes: ['notes:read'] },
            { name: 'admin-write-tools', tools: ['create_note', 'delete_note'], roles: ['admin'], scopes: ['notes:write'] },
            { name: 'admin-audit', resources: ['notes://admin/*'], prompts: ['purge_plan'], roles: ['admin'], scopes: ['notes:read'] },
          ],
        },
      },
      ...apiServer,
    ],
  });
}

export interface DemoApi {
  /** The demo notes API's own MCP endpoint (the upstream of /mcp/api). */
  url: string;
  /** The environment for `buildDemoConfig`, with the API's URL in it. */
  env: NodeJS.ProcessEnv;
  /** Tells the API which authorization server to trust, once the warden listens at `wardenUrl`. */
  trust(config: Config, wardenUrl: string): void;
  close(): Promise<void>;
}

/**
 * Starts the demo notes API (src/demo/notes-api.ts) on a loopback port before the warden, so that
 * `buildDemoConfig(demoApi.env)` can point /mcp/api at it.
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.1
 */
export async function startDemoApi(env: NodeJS.ProcessEnv): Promise<DemoApi> {
  let trusted: DemoApiTrust | undefined;
  // Loaded here, not at import: every CLI command reads this module, only `start --demo` serves the API.
  const { startDemoNotesApi } = await import('../demo/notes-api.ts');
  const api = await startDemoNotesApi(DEMO_API_AUDIENCE, () => trusted);
  return {
    url: api.url,
    env: { ...env, [DEMO_API_URL_ENV]: api.url },
    trust(config, wardenUrl) {
      const as = config.authorizationServer;
      if (!('embedded' in as) || !as.embedded.tokenExchange) return;
      const issuer = as.embedded.issuer ?? config.publicUrl;
      // The keys are fetched over loopback from the warden itself (the public URL may be a proxy's).
      const issuerPath = new URL(issuer).pathname.replace(/\/$/, '');
      trusted = { issuer, jwksUri: `${wardenUrl}${issuerPath}/oauth/jwks`, gatewayClientId: as.embedded.tokenExchange.gatewayClient.clientId };
    },
    close: () => api.close(),
  };
}
