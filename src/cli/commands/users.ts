/**
 * `mcp-warden users add|list|remove|set-role|set-password`: the built-in user store of the
 * embedded authorization server. Passwords come from stdin or a hidden prompt, never argv.
 */
import { openAdminContext } from '../../authorization-server/admin.ts';
import { readPassword } from '../../users/read-password.ts';
import { createRevocationList, revocationHorizonMs, revokeUser } from '../../authorization-server/revocation.ts';
import { longestAccessTokenTtlSeconds } from '../../authorization-server/keys.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command, CommandContext } from '../command.ts';
import { configFromOptions } from '../config-options.ts';

const HELP = `usage: mcp-warden users <subcommand> [--config FILE | --demo]
  add USER --role ROLE [--role ROLE]   create a user; the password is read from stdin or a prompt
  list [--json]                        list users and their roles
  remove USER                          delete a user and revoke every token issued to them
  disable USER                         refuse the user's sign-ins and revoke every token issued to them
  enable USER                          allow a disabled user to sign in again
  set-role USER --role ROLE [...]      replace a user's roles
  set-password USER                    change a password (stdin or prompt)`;

function stdinOf(ctx: CommandContext): NodeJS.ReadableStream & { isTTY?: boolean } {
  return (ctx as CommandContext & { stdin?: NodeJS.ReadableStream }).stdin ?? process.stdin;
}

export const run: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args;
  if (!sub || sub === '--help' || sub === '-h') { ctx.stdout.write(`${HELP}\n`); return sub ? 0 : 2; }
  const { values, positionals } = parseOptions(rest, {
    config: { type: 'string' }, demo: { type: 'boolean' }, role: { type: 'string', multiple: true }, json: { type: 'boolean' },
  });
  if (ctx.checkOnly) return ['add', 'list', 'remove', 'set-role', 'set-password'].includes(sub) ? 0 : 2; // parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, ctx.env);
  const admin = await openAdminContext(config, ctx.env);
  try {
    const username = positionals[0];
    // RFC 7009 §2.1: a removed or disabled user's grants and access tokens are revoked too; a
    // running gateway refuses them at the next request (same database).
    const revokeEverything = async (user: string) => {
      const as = config.authorizationServer;
      if (!('embedded' in as)) return;
      const store = admin.storage.as;
      const revocations = createRevocationList({ records: store.revocations, now: Date.now, horizonMs: revocationHorizonMs(longestAccessTokenTtlSeconds(as.embedded)) });
      await revokeUser(store, revocations, user);
    };
    const needUser = () => { if (!username) throw new UsageError(`users ${sub} needs a USER`); return username; };
    switch (sub) {
      case 'add': {
        const user = needUser();
        if (!values.role?.length) throw new UsageError('users add needs at least one --role');
        const password = await readPassword(stdinOf(ctx), ctx.stderr, `Password for ${user}: `);
        await admin.users.add(user, password, values.role);
        ctx.stdout.write(`added user ${user} (${values.role.join(', ')})\n`);
        return 0;
      }
      case 'list': {
        const users = await admin.users.list();
        if (values.json) { for (const u of users) ctx.stdout.write(`${JSON.stringify({ username: u.username, roles: u.roles, createdAt: new Date(u.createdAt).toISOString(), ...(u.disabledAt !== undefined ? { disabledAt: new Date(u.disabledAt).toISOString() } : {}) })}\n`); return 0; }
        if (!users.length) { ctx.stdout.write('no users\n'); return 0; }
        for (const u of users) ctx.stdout.write(`${u.username.padEnd(24)} ${u.roles.join(', ')}${u.disabledAt !== undefined ? '  (disabled)' : ''}\n`);
        return 0;
      }
      case 'remove': {
        const user = needUser();
        if (!await admin.users.remove(user)) { ctx.stderr.write(`mcp-warden users: no user "${user}"\n`); return 1; }
        await revokeEverything(user);
        ctx.stdout.write(`removed user ${user}\n`);
        return 0;
      }
      case 'disable':
      case 'enable': {
        const user = needUser();
        if (!await admin.users.setDisabled(user, sub === 'disable')) { ctx.stderr.write(`mcp-warden users: no user "${user}"\n`); return 1; }
        if (sub === 'disable') await revokeEverything(user);
        ctx.stdout.write(`${sub}d user ${user}\n`);
        return 0;
      }
      case 'set-role': {
        const user = needUser();
        if (!values.role?.length) throw new UsageError('users set-role needs at least one --role');
        await admin.users.setRoles(user, values.role);
        ctx.stdout.write(`${user}: ${values.role.join(', ')}\n`);
        return 0;
      }
      case 'set-password': {
        const user = needUser();
        if (!await admin.users.get(user)) { ctx.stderr.write(`mcp-warden users: no user "${user}"\n`); return 1; }
        const password = await readPassword(stdinOf(ctx), ctx.stderr, `New password for ${user}: `);
        await admin.users.setPassword(user, password);
        ctx.stdout.write(`password changed for ${user}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub}"\n${HELP}`);
    }
  } finally {
    await admin.close();
  }
};
