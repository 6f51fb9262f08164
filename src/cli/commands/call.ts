/** `mcp-warden call <url> <tool> [json-args]`: call one tool and print its result as JSON. */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, clientOptionsHelp, toClientOptions } from '../../client/cli-options.ts';
import { connectClient } from '../../client/connect.ts';
import { explainFailure } from '../../client/failure.ts';
import { WardenClient } from '../../client/session.ts';

/** Tool arguments are a JSON object (MCP tools/call `arguments`). */
export function parseToolArguments(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`tool arguments must be JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('tool arguments must be a JSON object, e.g. \'{"id": "1"}\'');
  return value as Record<string, unknown>;
}

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, clientOptionSpec);
  if (values.help) {
    ctx.stdout.write(`usage: mcp-warden call <url> <tool> [json-args] [options]\n\n${clientOptionsHelp}\n`);
    return 0;
  }
  const [url, tool, args] = positionals;
  if (!url || !tool || positionals.length > 3) throw new UsageError('usage: mcp-warden call <url> <tool> [json-args]');
  const toolArguments = parseToolArguments(args);
  const notice = (m: string) => ctx.stderr.write(`${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const client = new WardenClient(toClientOptions(url, values, ctx.env, { notice, printUrl: (u) => ctx.stderr.write(`Open this URL to sign in:\n\n  ${u.href}\n\n`) }));
  try {
    const mcp = await connectClient(client);
    try {
      const result = await mcp.callTool({ name: tool, arguments: toolArguments });
      ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return result.isError ? 1 : 0;
    } finally {
      await mcp.close();
    }
  } catch (err) {
    throw explainFailure(err, client.serverUrl);
  }
};
