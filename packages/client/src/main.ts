/**
 * `mcp-warden-client <command>`: the client commands of `mcp-warden` (src/cli/commands/), and
 * nothing that serves. Same commands, options and exit codes as `mcp-warden <command>`; this
 * table only leaves out start/users/clients/keys/consents/audit/explain/secrets, so the package
 * built from it carries no SQLite, no oidc-provider and no server SDK.
 */
import { readFileSync } from 'node:fs';
import type { Command, CommandContext } from '../../../src/cli/command.ts';
import { UsageError } from '../../../src/cli/options.ts';

const commands: Record<string, { summary: string; load: () => Promise<{ run: Command }> }> = {
  connect: { summary: 'stdio ↔ Streamable HTTP bridge to a protected MCP server', load: () => import('../../../src/cli/commands/connect.ts') },
  login: { summary: 'sign in to a protected MCP server', load: () => import('../../../src/cli/commands/login.ts') },
  logout: { summary: 'forget the tokens for a protected MCP server', load: () => import('../../../src/cli/commands/logout.ts') },
  token: { summary: 'print a valid access token for a protected MCP server', load: () => import('../../../src/cli/commands/token.ts') },
  tools: { summary: 'list the tools of a protected MCP server', load: () => import('../../../src/cli/commands/tools.ts') },
  call: { summary: 'call one tool of a protected MCP server', load: () => import('../../../src/cli/commands/call.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: mcp-warden-client <command> [options]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    "mcp-warden-client <command> --help shows a command's options. The server side is the mcp-warden package.",
  ].join('\n');
}

/** This package's version: package.json is one level up from src/ and from dist/ alike. */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

export async function main(argv: string[], io: Partial<CommandContext> = {}): Promise<number> {
  const ctx: CommandContext = { args: argv.slice(1), env: process.env, stdout: process.stdout, stderr: process.stderr, ...io };
  const name = argv[0];
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    ctx.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version') {
    ctx.stdout.write(`mcp-warden-client ${packageVersion()}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    ctx.stderr.write(`mcp-warden-client: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  try {
    const { run } = await command.load();
    return await run(ctx);
  } catch (err) {
    const e = err as Error;
    ctx.stderr.write(`mcp-warden-client ${name}: ${e.message}\n`);
    if (ctx.env.WARDEN_DEBUG) ctx.stderr.write(`${e.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
