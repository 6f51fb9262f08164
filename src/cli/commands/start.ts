/**
 * `mcp-warden start --config FILE` or `mcp-warden start --demo`: runs the gateway (and the
 * embedded authorization server when configured) until SIGINT/SIGTERM.
 */
import { startWarden } from '../../app.ts';
import { configFromOptions } from '../config-options.ts';
import { startDemoApi } from '../../config/demo.ts';
import type { Config } from '../../config/schema.ts';
import { canonicalResourceUri, protectedResourceMetadataUrl } from '../../kernel/resource-uri.ts';
import { createLogger } from '../../log.ts';
import { parseOptions } from '../options.ts';
import type { Command } from '../command.ts';

const HELP = `usage: mcp-warden start --config FILE
       mcp-warden start --demo

  --config FILE  a YAML or JSON configuration (docs/configuration.md)
  --demo         the embedded demo: notes server at /mcp, built-in authorization server,
                 SQLite at ./data/warden.db (PORT, HOST, WARDEN_DB, WARDEN_PUBLIC_URL override)
`;

export const run: Command = async (ctx) => {
  const { values } = parseOptions(ctx.args, { config: { type: 'string', short: 'c' }, demo: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    ctx.stdout.write(HELP);
    return 0;
  }
  if (ctx.checkOnly) return 0; // the invocation parsed: nothing more to do (docs tests)
  // --demo also serves the demo notes API over HTTP, reached by RFC 8693 token exchange at /mcp/api.
  const demoApi = values.demo && !values.config ? await startDemoApi(ctx.env) : undefined;
  let config: Config;
  let logger: ReturnType<typeof createLogger>;
  let warden: Awaited<ReturnType<typeof startWarden>>;
  try {
    config = configFromOptions(values, demoApi?.env ?? ctx.env, { create: true });
    logger = createLogger(config.log.level);
    if ('embedded' in config.authorizationServer) {
      // oidc-provider's own import-time warning is held back (oidc-provider-module.ts); say it once here.
      const { runtimeNote } = await import('../../authorization-server/oidc-provider-module.ts');
      const note = runtimeNote();
      if (note) ctx.stderr.write(`mcp-warden: note: ${note}\n`);
    }
    warden = await startWarden(config, { logger, env: ctx.env });
  } catch (err) {
    // The demo API listens already: a start-up that fails closes it, so the process ends with
    // the error instead of waiting on a server nobody will use.
    await demoApi?.close().catch(() => {});
    throw err;
  }
  demoApi?.trust(config, warden.url);

  const lines = [`mcp-warden listening on ${warden.url} (public URL ${config.publicUrl})`];
  for (const server of config.servers) {
    const endpoint = canonicalResourceUri(config, server);
    lines.push('', `  ${server.name}: MCP endpoint ${endpoint}`, `    protected resource metadata: ${protectedResourceMetadataUrl(config, server)}`, `    connect a client:  npx mcp-warden connect ${endpoint}`);
  }
  if ('embedded' in config.authorizationServer) {
    lines.push('', `  authorization server: ${config.authorizationServer.embedded.issuer ?? config.publicUrl}`);
    if (config.authorizationServer.embedded.demo) lines.push('  demo users are seeded: see the README (mcp-warden users list)');
  }
  if (demoApi) lines.push('', `  demo notes API (upstream of /mcp/api; accepts only tokens the gateway exchanged for it, RFC 8693): ${demoApi.url}`);
  lines.push('', 'Ctrl-C stops.');

  // The handlers are in place before the banner: whoever waits for it may signal at once.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const failed = (err: unknown) => logger.error({ err: (err as Error).message }, 'shutdown failed');
      // The demo notes API is an upstream of the warden: it closes after the drain, not during it.
      void warden.close({ drainMs: config.shutdown.drainSeconds * 1000 }).catch(failed)
        .then(() => demoApi?.close()).catch(failed)
        .then(() => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  // SIGHUP: sign with a key `mcp-warden keys rotate` added, now rather than at the next key check.
  const reloadKeys = () => {
    warden.reloadSigningKeys().then(
      ({ changed, kids }) => logger.info({ event: 'sighup', changed, signing_kid: kids[0] }, changed ? 'SIGHUP: signing keys reloaded' : 'SIGHUP: signing keys unchanged'),
      (err: unknown) => logger.error({ err: (err as Error).message }, 'SIGHUP: signing key reload failed; the keys take effect at the next start'),
    );
  };
  process.on('SIGHUP', reloadKeys);
  void stopped.then(() => process.off('SIGHUP', reloadKeys));
  ctx.stdout.write(`${lines.join('\n')}\n`);
  await stopped;
  logger.flush?.();
  return 0;
};
