/** `mcp-warden token <url>`: print a valid access token (refreshed as needed) for curl and scripts. */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, clientOptionsHelp, toClientOptions } from '../../client/cli-options.ts';
import { explainFailure } from '../../client/failure.ts';
import { WardenClient } from '../../client/session.ts';

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, { ...clientOptionSpec, 'no-login': { type: 'boolean' } });
  if (values.help) {
    ctx.stdout.write(`usage: mcp-warden token <url> [--no-login] [options]\n\n  --no-login                  fail instead of starting a sign-in\n${clientOptionsHelp}\n`);
    return 0;
  }
  const [url] = positionals;
  if (!url || positionals.length > 1) throw new UsageError('usage: mcp-warden token <url> [options]');
  const notice = (m: string) => ctx.stderr.write(`${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const options = toClientOptions(url, values, ctx.env, { notice, printUrl: (u) => ctx.stderr.write(`Open this URL to sign in:\n\n  ${u.href}\n\n`) });
  if (values['no-login']) options.interactive = false;
  const client = new WardenClient(options);
  const token = await client.accessToken().catch((err: unknown) => {
    throw explainFailure(err, client.serverUrl);
  });
  ctx.stdout.write(`${token}\n`);
  return 0;
};
