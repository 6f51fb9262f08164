/**
 * The embedded defaults `npm start` runs on: SQLite, the built-in authorization server on the
 * gateway's origin, and the demo notes server over stdio at /mcp.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { RECOMMENDED_RETENTION } from '../audit/schema.ts';
import { parseConfig } from './load.ts';
import type { Config } from './schema.ts';

const require = createRequire(import.meta.url);

/**
 * The command line that runs the demo notes server: compiled, as plain JavaScript (the installed
 * package has no TypeScript loader: tsx is a dev dependency); from source (a checkout), the
 * TypeScript file through tsx's loader.
 */
export function demoServerCommand(): { command: string; args: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const server = fileURLToPath(new URL(`../demo/notes-server.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return { command: process.execPath, args: fromSource ? ['--import', require.resolve('tsx'), server] : [server] };
}

export function buildDemoConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT ? Number(env.PORT) : 8080;
  const publicUrl = env.WARDEN_PUBLIC_URL ?? `http://localhost:${port}`;
  return parseConfig({
    listen: { host: env.HOST ?? '127.0.0.1', port },
    publicUrl,
    storage: { sqlite: { path: env.WARDEN_DB ?? './data/warden.db' } },
    // Retention is opt-in (keep forever by default, src/audit/schema.ts); the demo opts in to the recommended value.
    audit: { retention: RECOMMENDED_RETENTION },
    authorizationServer: { embedded: { demo: true, clientIdMetadataDocuments: { allowHttpLocalhost: true } } },
    servers: [
      {
        name: 'notes',
        path: '/mcp',
        upstream: { stdio: demoServerCommand() },
        scopes: ['notes:read', 'notes:write'],
        requiredScopes: ['notes:read'],
        scopeDescriptions: { 'notes:read': 'Read your notes', 'notes:write': 'Create and delete notes' },
        // Issue 4 demo: members read; admins also write and see the admin resource and prompt.
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
    ],
  });
}
