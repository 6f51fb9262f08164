/**
 * `mcp-warden connect <url>`: a stdio ↔ Streamable HTTP bridge for MCP hosts (Claude Desktop,
 * VS Code, Cursor). stdout carries only JSON-RPC; notices and the sign-in URL go to stderr.
 */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, clientOptionsHelp, toClientOptions } from '../../client/cli-options.ts';
import { runStdioBridge } from '../../client/bridge.ts';
import { createDeferredWarden } from '../../client/deferred-warden.ts';

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, clientOptionSpec);
  if (values.help) {
    ctx.stdout.write(`usage: mcp-warden connect <url> [options]\n\n${clientOptionsHelp}\n`);
    return 0;
  }
  const [url] = positionals;
  if (!url || positionals.length > 1) throw new UsageError('usage: mcp-warden connect <url> [options]');
  const notice = (m: string) => ctx.stderr.write(`mcp-warden connect: ${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  // The full client (the MCP SDK's OAuth, fetch) loads only when the stored token will not do.
  const client = createDeferredWarden(toClientOptions(url, values, ctx.env, { notice, printUrl: (u) => ctx.stderr.write(`mcp-warden connect: open this URL to sign in:\n\n  ${u.href}\n\n`) }));
  return runStdioBridge({ warden: client, stdin: process.stdin, stdout: ctx.stdout, onNotice: notice });
};
