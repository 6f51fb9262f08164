/**
 * `mcp-warden consents list|revoke`: consents the embedded authorization server remembers per
 * (user, client, resource). Revoking one also revokes every token of its grant, access tokens
 * included (RFC 7009 §2.1): a running gateway refuses them at the next request.
 */
import { openAdminContext } from '../../authorization-server/admin.ts';
import { createRevocationList, revocationHorizonMs } from '../../authorization-server/revocation.ts';
import { longestAccessTokenTtlSeconds } from '../../authorization-server/keys.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { configFromOptions } from '../config-options.ts';

const HELP = `usage: mcp-warden consents <list|revoke> [--config FILE | --demo]
  list [--user U] [--client C] [--json]
  revoke --user U [--client C]     forget the consent(s) and revoke their grants`;

export const run: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args;
  if (!sub || sub === '--help' || sub === '-h') { ctx.stdout.write(`${HELP}\n`); return sub ? 0 : 2; }
  const { values } = parseOptions(rest, {
    config: { type: 'string' }, demo: { type: 'boolean' }, json: { type: 'boolean' }, user: { type: 'string' }, client: { type: 'string' },
  }, false);
  if (ctx.checkOnly) return ['list', 'revoke'].includes(sub) ? 0 : 2; // parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, ctx.env);
  const admin = await openAdminContext(config, ctx.env);
  try {
    const store = admin.storage.as;
    switch (sub) {
      case 'list': {
        const list = await store.consents.list({ ...(values.user ? { accountId: values.user } : {}), ...(values.client ? { clientId: values.client } : {}) });
        if (values.json) { for (const c of list) ctx.stdout.write(`${JSON.stringify({ ...c, createdAt: new Date(c.createdAt).toISOString() })}\n`); return 0; }
        if (!list.length) { ctx.stdout.write('no consents\n'); return 0; }
        for (const c of list) ctx.stdout.write(`${c.accountId.padEnd(16)} ${c.clientId.padEnd(44)} ${c.resource}  ${c.scopes.join(' ')}\n`);
        return 0;
      }
      case 'revoke': {
        if (!values.user) throw new UsageError('consents revoke needs --user');
        const as = config.authorizationServer;
        if (!('embedded' in as)) throw new UsageError('this configuration uses an external authorization server; consents live there');
        const revocations = createRevocationList({ records: store.revocations, now: Date.now, horizonMs: revocationHorizonMs(longestAccessTokenTtlSeconds(as.embedded)) });
        const removed = await store.consents.remove({ accountId: values.user, ...(values.client ? { clientId: values.client } : {}) });
        for (const r of removed) {
          await revocations.revokeGrant(r.grantId);
          await store.models.revokeByGrantId(r.grantId);
        }
        ctx.stdout.write(`revoked ${removed.length} consent${removed.length === 1 ? '' : 's'}\n`);
        return removed.length ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub}"\n${HELP}`);
    }
  } finally {
    await admin.close();
  }
};
