/**
 * `mcp-warden secrets set|list|remove`: users' own credentials for downstream servers
 * (servers[].downstream.perUserSecret). The value of `set` is read from standard input, never
 * from argv, so it stays out of shell history and the process list.
 */
import type { Command, CommandContext } from '../command.ts';
import { parseOptions, UsageError } from '../options.ts';
import { configFromOptions } from '../config-options.ts';
import type { Config, ServerConfig } from '../../config/schema.ts';
import { openStorage } from '../../storage/index.ts';
import { loadSecretsKey } from '../../downstream/secrets-key.ts';
import { listStoredSecrets, openServerSecrets } from '../../downstream/secret-store.ts';

const USAGE = `usage: mcp-warden secrets set    --server S --user U [--config FILE | --demo]   (value from standard input)
       mcp-warden secrets list   [--server S] [--config FILE | --demo]
       mcp-warden secrets remove --server S --user U [--config FILE | --demo]

The key comes from the server's downstream.perUserSecret.key (default: $WARDEN_SECRETS_KEY, base64 of 32 bytes).`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  demo: { type: 'boolean' },
  server: { type: 'string', short: 's' },
  user: { type: 'string', short: 'u' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Most bytes a stored secret may have. */
const MAX_SECRET_BYTES = 16 * 1024;

export const run: Command = async (ctx) => {
  const { values, positionals } = parseOptions(ctx.args, OPTIONS);
  const action = positionals[0];
  if (values.help || !action) {
    (values.help ? ctx.stdout : ctx.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}": the secret is read from standard input, never from the command line`);
  if (ctx.checkOnly) return ['list', 'set', 'remove'].includes(action) ? 0 : 2; // parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, ctx.env);
  const storage = await openStorage(config);
  const stored = storage.downstream.secrets;
  try {
    switch (action) {
      case 'list': {
        if (values.server !== undefined) findServer(config, values.server);
        const rows = await listStoredSecrets(stored, values.server);
        if (rows.length === 0) ctx.stdout.write('no stored secrets\n');
        for (const r of rows) ctx.stdout.write(`${r.server}\t${r.user}\t${r.updatedAt.toISOString()}\n`);
        return 0;
      }
      case 'set': {
        const { server, user } = target(config, values);
        // Check the key before asking for the secret: a wrong key fails before anything is typed.
        const store = await openServerSecrets(stored, server.name, loadSecretsKey(server.downstream!.perUserSecret!.key, ctx.env));
        const value = await readSecret(ctx);
        // RFC 9110 §5.5: a header cannot carry CR, LF or NUL; an environment variable cannot carry NUL.
        if (/\0/.test(value) || ('http' in server.upstream && /[\r\n]/.test(value))) {
          throw new UsageError(`the secret contains ${'http' in server.upstream ? 'line breaks or NUL characters, which an HTTP header' : 'NUL characters, which an environment variable'} cannot carry`);
        }
        await store.set(user, value);
        ctx.stdout.write(`stored the secret of user "${user}" for server "${server.name}"\n`);
        return 0;
      }
      case 'remove': {
        const { server, user } = target(config, values);
        const key = loadSecretsKey(server.downstream!.perUserSecret!.key, ctx.env);
        const removed = await (await openServerSecrets(stored, server.name, key)).remove(user);
        ctx.stdout.write(removed ? `removed the secret of user "${user}" for server "${server.name}"\n` : `user "${user}" has no secret for server "${server.name}"\n`);
        return removed ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown action "${action}"; use set, list or remove`);
    }
  } finally {
    await storage.close();
  }
};

function findServer(config: Config, name: string): ServerConfig {
  const server = config.servers.find((s) => s.name === name);
  if (!server) throw new UsageError(`no server named "${name}" in the configuration (servers: ${config.servers.map((s) => s.name).join(', ')})`);
  return server;
}

function target(config: Config, values: { server?: string; user?: string }): { server: ServerConfig; user: string } {
  if (!values.server || !values.user) throw new UsageError('name the server and the user: --server S --user U');
  const server = findServer(config, values.server);
  if (!server.downstream?.perUserSecret) {
    throw new UsageError(`server "${server.name}" does not use per-user secrets; add downstream.perUserSecret to its configuration`);
  }
  return { server, user: values.user };
}

async function readSecret(ctx: CommandContext): Promise<string> {
  const stdin = (ctx as CommandContext & { stdin?: NodeJS.ReadableStream }).stdin ?? process.stdin;
  if ((stdin as NodeJS.ReadStream).isTTY) ctx.stderr.write('enter the secret, then press Ctrl-D:\n');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_SECRET_BYTES) throw new UsageError(`the secret is longer than ${MAX_SECRET_BYTES} bytes`);
    chunks.push(b);
  }
  // One trailing newline (from echo or a here-string) is not part of the secret.
  const value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (value === '') throw new UsageError('no secret on standard input; pipe it in, e.g. printf %s "$TOKEN" | mcp-warden secrets set ...');
  return value;
}
