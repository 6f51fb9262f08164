/**
 * `mcp-warden clients add|list|remove`: pre-registered OAuth clients of the embedded
 * authorization server. A confidential client's secret is printed once and stored hashed.
 */
import { readFileSync } from 'node:fs';
import { openAdminContext } from '../../authorization-server/admin.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { configFromOptions } from '../config-options.ts';

const HELP = `usage: mcp-warden clients <subcommand> [--config FILE | --demo]
  add --name NAME (--public | --confidential) [options]
      --redirect-uri URI     (repeatable) exact redirect URI; loopback http or https
      --grant-type TYPE      (repeatable) default: authorization_code+refresh_token with redirect URIs, else client_credentials
      --scope "a b"          scopes the client may request
      --role ROLE            (repeatable) roles carried by its client-credentials tokens
      --jwks FILE            public JWK Set: authenticates with private_key_jwt instead of a secret
      --jwks-uri URL         or where the client publishes that JWK Set
      --native               application_type native (CLI/desktop apps)
      --client-id ID         choose the client_id (default: random)
  list [--json]
  remove CLIENT_ID          deletes the client and revokes everything issued to it`;

export const run: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args;
  if (!sub || sub === '--help' || sub === '-h') { ctx.stdout.write(`${HELP}\n`); return sub ? 0 : 2; }
  const { values, positionals } = parseOptions(rest, {
    config: { type: 'string' }, demo: { type: 'boolean' }, json: { type: 'boolean' },
    name: { type: 'string' }, public: { type: 'boolean' }, confidential: { type: 'boolean' },
    'redirect-uri': { type: 'string', multiple: true }, 'grant-type': { type: 'string', multiple: true },
    scope: { type: 'string' }, role: { type: 'string', multiple: true }, jwks: { type: 'string' }, 'jwks-uri': { type: 'string' },
    native: { type: 'boolean' }, 'client-id': { type: 'string' },
  });
  if (ctx.checkOnly) return ['add', 'list', 'remove'].includes(sub) ? 0 : 2; // parsed: nothing more to do (docs tests)
  const admin = await openAdminContext(configFromOptions(values, ctx.env), ctx.env);
  try {
    const as = await admin.authorizationServer();
    switch (sub) {
      case 'add': {
        if (!values.name) throw new UsageError('clients add needs --name');
        if (values.public === values.confidential) throw new UsageError('say --public or --confidential');
        let jwks: { keys: Array<Record<string, unknown>> } | undefined;
        if (values.jwks) {
          const parsed = JSON.parse(readFileSync(values.jwks, 'utf8')) as unknown;
          if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new UsageError('--jwks must name a JSON file with a "keys" array');
          jwks = parsed as { keys: Array<Record<string, unknown>> };
          if (jwks.keys.some((k) => 'd' in k)) throw new UsageError('--jwks must hold public keys only');
        }
        const result = await as.clients.add({
          clientName: values.name, type: values.public ? 'public' : 'confidential',
          ...(values['client-id'] ? { clientId: values['client-id'] } : {}),
          ...(values['redirect-uri'] ? { redirectUris: values['redirect-uri'] } : {}),
          ...(values['grant-type'] ? { grantTypes: values['grant-type'] } : {}),
          ...(values.scope ? { scope: values.scope } : {}),
          ...(values.role ? { roles: values.role } : {}),
          ...(jwks ? { jwks } : {}),
          ...(values['jwks-uri'] ? { jwksUri: values['jwks-uri'] } : {}),
          ...(values.native ? { applicationType: 'native' as const } : {}),
        });
        ctx.stdout.write(`client_id: ${result.clientId}\n`);
        if (result.clientSecret) ctx.stdout.write(`client_secret: ${result.clientSecret}\n(shown once: only a hash is stored)\n`);
        return 0;
      }
      case 'list': {
        const clients = await as.clients.list();
        if (values.json) { for (const c of clients) ctx.stdout.write(`${JSON.stringify(c)}\n`); return 0; }
        if (!clients.length) { ctx.stdout.write('no clients\n'); return 0; }
        for (const c of clients) {
          ctx.stdout.write(`${c.clientId.padEnd(44)} ${c.origin.padEnd(15)} ${c.tokenEndpointAuthMethod.padEnd(20)} ${c.clientName}\n`);
        }
        return 0;
      }
      case 'remove': {
        const id = positionals[0];
        if (!id) throw new UsageError('clients remove needs a CLIENT_ID');
        if (!(await as.clients.remove(id))) { ctx.stderr.write(`mcp-warden clients: no client "${id}"\n`); return 1; }
        ctx.stdout.write(`removed client ${id} and revoked its grants\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub}"\n${HELP}`);
    }
  } finally {
    await admin.close();
  }
};
