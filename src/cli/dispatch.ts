/**
 * One program's command table run against argv: help, `--version`, an unknown command, and a
 * command's failure printed as one line (a stack only with WARDEN_DEBUG; usage errors exit 2).
 * Shared by `mcp-warden` (src/cli/main.ts) and the light `mcp-warden-client` (packages/client).
 */
import type { Command, CommandContext } from './command.ts';
import { UsageError } from './options.ts';

export type CommandTable = Record<string, { summary: string; load: () => Promise<{ run: Command }> }>;

export interface Program {
  /** The name a user types, e.g. `mcp-warden`. */
  name: string;
  commands: CommandTable;
  /** The last line of the usage text. */
  footer: string;
  version: () => string;
}

function usage(program: Program): string {
  const width = Math.max(...Object.keys(program.commands).map((c) => c.length));
  return [
    `usage: ${program.name} <command> [options]`,
    '',
    ...Object.entries(program.commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    program.footer,
  ].join('\n');
}

export async function dispatch(program: Program, argv: string[], io: Partial<CommandContext> = {}): Promise<number> {
  const ctx: CommandContext = { args: argv.slice(1), env: process.env, stdout: process.stdout, stderr: process.stderr, ...io };
  const name = argv[0];
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    ctx.stdout.write(`${usage(program)}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    ctx.stdout.write(`${program.name} ${program.version()}\n`);
    return 0;
  }
  const command = program.commands[name];
  if (!command) {
    ctx.stderr.write(`${program.name}: unknown command "${name}"\n\n${usage(program)}\n`);
    return 2;
  }
  try {
    const { run } = await command.load();
    return await run(ctx);
  } catch (err) {
    const e = err as Error;
    ctx.stderr.write(`${program.name} ${name}: ${e.message}\n`);
    if (ctx.env.WARDEN_DEBUG) ctx.stderr.write(`${e.stack}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
