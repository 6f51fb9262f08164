/**
 * `mcp-warden keys list|rotate`: ES256 signing keys of the embedded authorization server.
 * A rotation adds a key; a running warden signs with it from its next key check (every
 * authorizationServer.embedded.signingKeyCheckSeconds, default 60) or at once on SIGHUP. The
 * previous key stays published so tokens it signed keep verifying until they expire; older keys
 * are retired.
 */
import { openAdminContext } from '../../authorization-server/admin.ts';
import { activeSigningKeys, longestAccessTokenTtlSeconds, rotateSigningKey } from '../../authorization-server/keys.ts';
import { announceKeyChange } from '../../cluster/key-notices.ts';
import { silentLogger } from '../../log.ts';
import { parseOptions, UsageError } from '../options.ts';
import type { Command } from '../command.ts';
import { configFromOptions } from '../config-options.ts';

const HELP = `usage: mcp-warden keys <list|rotate> [--config FILE | --demo] [--json]
  list     signing keys, newest first, with their state
  rotate   add a new signing key; a running warden signs with it within signingKeyCheckSeconds
           (default 60 s), at once on SIGHUP, or at once when cluster.redis is configured (a key
           notice reaches every instance). Keys beyond the newest two are retired once the
           tokens they signed have expired (the longest accessTokenTtlSeconds, token-exchange
           audiences included, after they stopped signing)
    --force  retire every previous key now, the signing one included (a compromised key:
             its tokens stop verifying at once; users sign in again)`;

export const run: Command = async (ctx) => {
  const [sub, ...rest] = ctx.args;
  if (!sub || sub === '--help' || sub === '-h') { ctx.stdout.write(`${HELP}\n`); return sub ? 0 : 2; }
  const { values } = parseOptions(rest, { config: { type: 'string' }, demo: { type: 'boolean' }, json: { type: 'boolean' }, force: { type: 'boolean' } }, false);
  if (ctx.checkOnly) return ['list', 'rotate'].includes(sub) ? 0 : 2; // parsed: nothing more to do (docs tests)
  const config = configFromOptions(values, ctx.env);
  const admin = await openAdminContext(config, ctx.env);
  try {
    const store = admin.storage.as;
    switch (sub) {
      case 'list': {
        const keys = await store.keys.list('sig');
        if (!keys.length) { ctx.stdout.write('no signing keys yet (created on first start)\n'); return 0; }
        keys.forEach((k, i) => {
          const state = k.retiredAt !== undefined ? 'retired' : i === 0 ? 'signing' : 'published';
          if (values.json) ctx.stdout.write(`${JSON.stringify({ kid: k.kid, alg: k.jwk.alg, state, createdAt: new Date(k.createdAt).toISOString() })}\n`);
          else ctx.stdout.write(`${k.kid}  ${k.jwk.alg ?? ''}  ${new Date(k.createdAt).toISOString()}  ${state}\n`);
        });
        return 0;
      }
      case 'rotate': {
        const as = config.authorizationServer;
        if (!('embedded' in as)) throw new UsageError('this configuration uses an external authorization server; its keys live there');
        // A key signs until the running warden reloads (at most one check interval), then its
        // tokens live up to the longest access-token TTL (token-exchange audiences included)
        // more, plus the gateway's 60 s clock tolerance.
        const tokenLifetimeMs = (longestAccessTokenTtlSeconds(as.embedded) + as.embedded.signingKeyCheckSeconds + 60) * 1000;
        const { added, retired, kept } = await rotateSigningKey(store.keys, Date.now, { tokenLifetimeMs, force: values.force === true });
        ctx.stdout.write(`new signing key ${added.kid}; a running mcp-warden signs with it at its next key check, or at once on SIGHUP\n`);
        for (const kid of retired) ctx.stdout.write(`retired ${kid}\n`);
        for (const k of kept) ctx.stdout.write(`still published ${k.kid}: tokens it signed may be valid until ${new Date(k.retireAfter).toISOString()}; the next rotation after that retires it (--force: now)\n`);
        // cluster.redis: every running instance reloads now (src/cluster/key-notices.ts).
        const redis = config.cluster?.redis;
        if (redis) {
          const kids = (await activeSigningKeys(store.keys)).map((k) => k.kid);
          const sent = await announceKeyChange(redis, { kids }, silentLogger);
          ctx.stdout.write('received' in sent
            ? `key notice sent over Redis: ${sent.received} instance(s) reload their keys now\n`
            : `key notice not sent (${sent.notSent}): running instances reload at their next key check\n`);
        }
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand "${sub}"\n${HELP}`);
    }
  } finally {
    await admin.close();
  }
};
