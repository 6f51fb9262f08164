/** `mcp-warden logout <url>`: revoke (RFC 7009) and forget the tokens for one server. */
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { clientOptionSpec, toClientOptions } from '../../client/cli-options.ts';
import { WardenClient } from '../../client/session.ts';

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, clientOptionSpec);
  const [url] = positionals;
  if (values.help || !url || positionals.length > 1) {
    ctx.stdout.write('usage: mcp-warden logout <url>\n');
    if (values.help) return 0;
    throw new UsageError('usage: mcp-warden logout <url>');
  }
  const notice = (m: string) => ctx.stderr.write(`${m}\n`);
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  const client = new WardenClient({ ...toClientOptions(url, values, ctx.env, { notice, printUrl: () => undefined }), interactive: false });
  const { removed, revoked } = await client.logout();
  ctx.stderr.write(removed ? `Signed out of ${client.serverUrl}${revoked ? '; the tokens were revoked' : ''}\n` : `No stored sign-in for ${client.serverUrl}\n`);
  return 0;
};
