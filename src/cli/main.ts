/**
 * `mcp-warden <command>`: the only place that reads argv; each command lives in its own file
 * under commands/ and is loaded on demand, so `mcp-warden token` does not load the gateway.
 */
import { readFileSync } from 'node:fs';
import type { CommandContext } from './command.ts';
import { dispatch, type CommandTable } from './dispatch.ts';

const commands: CommandTable = {
  start: { summary: 'run the gateway and authorization server (--config FILE, or --demo)', load: () => import('./commands/start.ts') },
  users: { summary: 'manage built-in users: add|list|remove|set-role|set-password', load: () => import('./commands/users.ts') },
  clients: { summary: 'manage pre-registered OAuth clients: add|list|remove', load: () => import('./commands/clients.ts') },
  keys: { summary: 'signing keys of the embedded authorization server: list|rotate', load: () => import('./commands/keys.ts') },
  consents: { summary: 'remembered consents: list|revoke', load: () => import('./commands/consents.ts') },
  audit: { summary: 'query recorded authorization decisions', load: () => import('./commands/audit.ts') },
  explain: { summary: 'explain the decision for a user, client and tool without calling anything', load: () => import('./commands/explain.ts') },
  migrate: { summary: 'apply schema migrations, or move a SQLite installation to PostgreSQL (--from FILE --to URL)', load: () => import('./commands/migrate.ts') },
  secrets: { summary: "manage users' downstream credentials: set|list|remove", load: () => import('./commands/secrets.ts') },
  connect: { summary: 'stdio ↔ Streamable HTTP bridge to a protected MCP server', load: () => import('./commands/connect.ts') },
  login: { summary: 'sign in to a protected MCP server', load: () => import('./commands/login.ts') },
  logout: { summary: 'forget the tokens for a protected MCP server', load: () => import('./commands/logout.ts') },
  token: { summary: 'print a valid access token for a protected MCP server', load: () => import('./commands/token.ts') },
  status: { summary: 'list stored sign-ins: server, user, scopes, expiry, token store', load: () => import('./commands/status.ts') },
  tools: { summary: 'list the tools of a protected MCP server', load: () => import('./commands/tools.ts') },
  call: { summary: 'call one tool of a protected MCP server', load: () => import('./commands/call.ts') },
};

/** The installed package's version: package.json is two levels up from src/cli/ and from dist/cli/ alike. */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export function main(argv: string[], io: Partial<CommandContext> = {}): Promise<number> {
  return dispatch({
    name: 'mcp-warden',
    commands,
    footer: "mcp-warden <command> --help shows a command's options; mcp-warden --version prints the version.",
    version: packageVersion,
  }, argv, io);
}
