/** `mcp-warden tools <url>`: list the tools of a protected MCP server. */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, clientOptionsHelp, toClientOptions } from '../../client/cli-options.ts';
import { connectClient } from '../../client/connect.ts';
import { explainFailure } from '../../client/failure.ts';
import { WardenClient } from '../../client/session.ts';

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, { ...clientOptionSpec, json: { type: 'boolean' } });
  if (values.help) {
    ctx.stdout.write(`usage: mcp-warden tools <url> [--json] [options]\n\n${clientOptionsHelp}\n`);
    return 0;
  }
  const [url] = positionals;
  if (!url || positionals.length > 1) throw new UsageError('usage: mcp-warden tools <url> [options]');
  const notice = (m: string) => ctx.stderr.write(`${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const client = new WardenClient(toClientOptions(url, values, ctx.env, { notice, printUrl: (u) => ctx.stderr.write(`Open this URL to sign in:\n\n  ${u.href}\n\n`) }));
  try {
    const mcp = await connectClient(client);
    try {
      const tools = [];
      let cursor: string | undefined;
      do {
        const page = await mcp.listTools(cursor ? { cursor } : {});
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
      if (values.json) ctx.stdout.write(`${JSON.stringify(tools, null, 2)}\n`);
      else for (const tool of tools) ctx.stdout.write(`${tool.name}${tool.description ? `\t${tool.description.split('\n')[0]}` : ''}\n`);
    } finally {
      await mcp.close();
    }
  } catch (err) {
    throw explainFailure(err, client.serverUrl);
  }
  return 0;
};
