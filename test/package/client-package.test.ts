/**
 * The light client package (packages/client, published as `mcp-warden-client`): built from
 * src/client/** and the client commands where they are, it must carry nothing that serves.
 * The bundle is built here as `npm pack` builds it (packages/client/build.mjs) and esbuild's
 * record of every module it took in is checked, so an import added anywhere in the client's
 * graph that reaches a server module fails this test, not a user's install.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');
const BUILD = join(ROOT, 'packages/client/build.mjs');

/** Modules a client never needs: the gateway, the authorization server and their storage and dependencies. */
const SERVER_MODULES: [RegExp, string][] = [
  [/^src\/(gateway|authorization-server|account|storage|audit|policy|downstream|users|config|demo|http)\//, 'a server folder of src/'],
  [/^src\/(app|index|log)\.ts$/, 'the server entry points of src/'],
  [/^src\/cli\/commands\/(start|users|clients|keys|consents|audit|audit-prune|explain|secrets)\.ts$/, 'a server command'],
  [/node_modules\/(better-sqlite3(-12)?|bindings|oidc-provider|koa|@modelcontextprotocol\/server|@modelcontextprotocol\/sdk|pino|yaml|undici|express|hono)\//, 'a server dependency'],
];

interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, { bytes: number; inputs: Record<string, unknown>; imports: { path: string; kind: string }[] }>;
}

/** Loaded by `connect` only when the stored token will not do (src/client/deferred-warden.ts) or on failure. */
const DEFERRED: [RegExp, string][] = [
  [/node_modules\/@modelcontextprotocol\//, 'the MCP SDK'],
  [/^src\/client\/(session|provider|failure|connect|dpop|loopback|browser|id-jag)\.ts$/, 'the full client'],
  [/node_modules\/(oauth4webapi|jose|undici)\//, 'an OAuth or HTTP library'],
];

describe('mcp-warden-client: the light client package', () => {
  let out: string;
  let meta: Metafile;

  before(() => {
    out = mkdtempSync(join(tmpdir(), 'warden-client-package-'));
    const r = spawnSync(process.execPath, [BUILD, join(out, 'dist'), '--meta', join(out, 'meta.json'), '--no-types'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `build.mjs failed:\n${r.stdout}\n${r.stderr}`);
    meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as Metafile;
  });

  after(() => rmSync(out, { recursive: true, force: true }));

  it('its import graph reaches no server module (SQLite, oidc-provider, the server SDK, src/gateway, src/authorization-server …)', () => {
    const inputs = Object.keys(meta.inputs);
    assert.ok(inputs.includes('src/client/session.ts'), `the graph was read (${inputs.length} modules)`);
    const reached = inputs.flatMap((input) => SERVER_MODULES.filter(([pattern]) => pattern.test(input)).map(([, what]) => `${input} (${what})`));
    assert.deepEqual(reached, [], 'server modules in the client bundle');
  });

  it('loads no native addon: every bundled module is JavaScript or TypeScript', () => {
    const foreign = Object.keys(meta.inputs).filter((input) => !/\.(c|m)?(j|t)s$|\.json$/.test(input));
    assert.deepEqual(foreign, []);
  });

  it('bundles its dependencies and ships their licence notices', () => {
    const notices = readFileSync(join(out, 'dist/THIRD-PARTY-NOTICES.md'), 'utf8');
    for (const name of ['@modelcontextprotocol/client', 'zod', 'jose']) assert.match(notices, new RegExp(`^## ${name.replace('/', '\\/')} `, 'm'));
  });

  it('the bundled command runs on plain Node (no TypeScript loader): --help lists only client commands, --version names the package', () => {
    const help = spawnSync(process.execPath, [join(out, 'dist/cli.js'), '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(help.status, 0, help.stderr);
    const commands = [...help.stdout.matchAll(/^ {2}(\S+) /gm)].map((m) => m[1]);
    assert.deepEqual(commands.sort(), ['call', 'connect', 'login', 'logout', 'status', 'token', 'tools']);
    // The installed layout: package.json beside dist/, read for --version.
    copyFileSync(join(ROOT, 'packages/client/package.json'), join(out, 'package.json'));
    const manifest = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as { version: string };
    const version = spawnSync(process.execPath, [join(out, 'dist/cli.js'), '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `mcp-warden-client ${manifest.version}\n`);
  });

  it('a server command is not part of the light client: it says which package has it', () => {
    const r = spawnSync(process.execPath, [join(out, 'dist/cli.js'), 'start', '--demo'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "start"/);
    assert.match(r.stderr, /server side is the mcp-warden package/);
    assert.deepEqual(readdirSync(join(out, 'dist')).filter((f) => f.endsWith('.node')), []);
  });
  /** Every source module evaluated once the outputs `from` are loaded, following static imports only. */
  function staticallyLoaded(from: string[]): Set<string> {
    const chunks = new Set<string>();
    const visit = (path: string) => {
      if (chunks.has(path) || !meta.outputs[path]) return;
      chunks.add(path);
      for (const imported of meta.outputs[path].imports) if (imported.kind === 'import-statement') visit(imported.path);
    };
    from.forEach(visit);
    return new Set([...chunks].flatMap((chunk) => Object.keys(meta.outputs[chunk]!.inputs)));
  }

  // What an idle `connect` loads: the modules reachable by static imports from the command's entry
  // and the `connect` chunk are what every `connect` evaluates (docs/benchmarks.md, Client
  // footprint: the 60 MB budget).
  it('MCP 2025-11-25 transports §Streamable HTTP: connect relays with its own client; the MCP SDK, the full OAuth client and undici load only on demand', () => {
    const outputs = meta.outputs;
    const names = Object.keys(outputs).filter((name) => name.endsWith('.js'));
    const cli = names.find((name) => relative(out, name).replaceAll('\\', '/').endsWith('dist/cli.js'));
    const connect = names.find((name) => Object.keys(outputs[name]!.inputs).includes('src/cli/commands/connect.ts'));
    assert.ok(cli && connect, `the cli entry and the connect chunk: ${names.join(', ')}`);
    const loaded = staticallyLoaded([cli, connect]);
    assert.ok(loaded.has('src/client/streamable-http.ts') && loaded.has('src/client/bridge.ts'), 'the graph walked is the bridge\'s');
    const early = [...loaded].flatMap((input) => DEFERRED.filter(([pattern]) => pattern.test(input)).map(([, what]) => `${input} (${what})`));
    assert.deepEqual(early, [], 'modules the steady state must not load');
    // And they are still in the package, behind a dynamic import: the full client is one away.
    const everything = new Set(Object.values(outputs).flatMap((o) => Object.keys(o.inputs)));
    assert.ok(everything.has('src/client/session.ts'));
  });
});
