/** `mcp-warden login <url>`: sign in to a protected MCP server and store the tokens. */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, clientOptionsHelp, toClientOptions } from '../../client/cli-options.ts';
import { explainFailure } from '../../client/failure.ts';
import { WardenClient } from '../../client/session.ts';

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, clientOptionSpec);
  if (values.help) {
    ctx.stdout.write(`usage: mcp-warden login <url> [options]\n\n${clientOptionsHelp}\n`);
    return 0;
  }
  const [url] = positionals;
  if (!url || positionals.length > 1) throw new UsageError('usage: mcp-warden login <url> [options]');
  const notice = (m: string) => ctx.stderr.write(`${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const client = new WardenClient(toClientOptions(url, values, ctx.env, { notice, printUrl: (u) => ctx.stderr.write(`Open this URL to sign in:\n\n  ${u.href}\n\n`) }));
  const tokens = await client.login().catch((err: unknown) => {
    throw explainFailure(err, client.serverUrl);
  });
  ctx.stderr.write(`Signed in to ${client.serverUrl}${tokens.issuer ? ` (authorization server ${tokens.issuer})` : ''}${tokens.scope ? `, scope: ${tokens.scope}` : ''}\n`);
  return 0;
};
