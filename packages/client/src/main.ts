/**
 * `mcp-warden-client <command>`: the client commands of `mcp-warden` (src/cli/commands/), and
 * nothing that serves. Same commands, options and exit codes as `mcp-warden <command>`; this
 * table only leaves out start/users/clients/keys/consents/audit/explain/secrets, so the package
 * built from it carries no SQLite, no oidc-provider and no server SDK.
 */
import { readFileSync } from 'node:fs';
import type { CommandContext } from '../../../src/cli/command.ts';
import { dispatch, type CommandTable } from '../../../src/cli/dispatch.ts';

const commands: CommandTable = {
  connect: { summary: 'stdio ↔ Streamable HTTP bridge to a protected MCP server', load: () => import('../../../src/cli/commands/connect.ts') },
  login: { summary: 'sign in to a protected MCP server', load: () => import('../../../src/cli/commands/login.ts') },
  logout: { summary: 'forget the tokens for a protected MCP server', load: () => import('../../../src/cli/commands/logout.ts') },
  token: { summary: 'print a valid access token for a protected MCP server', load: () => import('../../../src/cli/commands/token.ts') },
  tools: { summary: 'list the tools of a protected MCP server', load: () => import('../../../src/cli/commands/tools.ts') },
  call: { summary: 'call one tool of a protected MCP server', load: () => import('../../../src/cli/commands/call.ts') },
  status: { summary: 'list stored sign-ins: server, user, scopes, expiry, token store', load: () => import('../../../src/cli/commands/status.ts') },
};

/** This package's version: package.json is one level up from src/ and from dist/ alike. */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export function main(argv: string[], io: Partial<CommandContext> = {}): Promise<number> {
  return dispatch({
    name: 'mcp-warden-client',
    commands,
    footer: "mcp-warden-client <command> --help shows a command's options. The server side is the mcp-warden package.",
    version: packageVersion,
  }, argv, io);
}
