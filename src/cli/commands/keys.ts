/**
 * `mcp-warden keys list|rotate`: ES256 signing keys of the embedded authorization server.
 * A rotation adds a key that signs from the next start; the previous key stays published so
 * tokens it signed keep verifying until they expire; older keys are retired.
 */
import { openAdminContext } from '../../authorization-server/admin.ts';
import { rotateSigningKey } from '../../authorization-server/keys.ts';
import { createSqliteStore } from '../../storage/sqlite/store.ts';
import { parseOptions, UsageError, type Command } from '../main.ts';
import { configFromOptions } from './audit.ts';

const HELP = `usage: mcp-warden keys <list|rotate> [--config FILE | --demo] [--json]
  list     signing keys, newest first, with their state
  rotate   add a new signing key (used after the next start); retire all but the newest two`;

export const run: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args;
  if (!sub || sub === '--help' || sub === '-h') { ctx.stdout.write(`${HELP}\n`); return sub ? 0 : 2; }
  const { values } = parseOptions(rest, { config: { type: 'string' }, demo: { type: 'boolean' }, json: { type: 'boolean' } }, false);
  const admin = openAdminContext(configFromOptions(values, ctx.env), ctx.env);
  try {
    const store = createSqliteStore(admin.db);
    switch (sub) {
      case 'list': {
        const keys = await store.keys.list('sig');
        if (!keys.length) { ctx.stdout.write('no signing keys yet (created on first start)\n'); return 0; }
        keys.forEach((k, i) => {
          const state = k.retiredAt !== undefined ? 'retired' : i === 0 ? 'signing (from next start)' : 'published';
          if (values.json) ctx.stdout.write(`${JSON.stringify({ kid: k.kid, alg: k.jwk.alg, state, createdAt: new Date(k.createdAt).toISOString() })}\n`);
          else ctx.stdout.write(`${k.kid}  ${k.jwk.alg ?? ''}  ${new Date(k.createdAt).toISOString()}  ${state}\n`);
        });
        return 0;
      }
      case 'rotate': {
        const { added, retired } = await rotateSigningKey(store.keys, Date.now);
        ctx.stdout.write(`new signing key ${added.kid}; restart mcp-warden to sign with it\n`);
        for (const kid of retired) ctx.stdout.write(`retired ${kid}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub}"\n${HELP}`);
    }
  } finally {
    admin.close();
  }
};
