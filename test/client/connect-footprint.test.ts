/**
 * What an idle `connect` loads, checked on the light package as `npm pack` builds it
 * (packages/client/build.mjs): the modules reachable by static imports from the command's entry
 * and the `connect` command's chunk are what every `connect` evaluates; the MCP SDK (its
 * transports and the zod schemas they build), the full OAuth client and the sign-in code must only
 * be reachable through a dynamic import (docs/benchmarks.md, Client footprint: the 60 MB budget).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');

interface Output {
  inputs: Record<string, unknown>;
  imports: { path: string; kind: string }[];
}

/** Loaded only when the stored token will not do (src/client/deferred-warden.ts) or on failure. */
const DEFERRED: [RegExp, string][] = [
  [/node_modules\/@modelcontextprotocol\//, 'the MCP SDK'],
  [/^src\/client\/(session|provider|failure|connect|dpop|loopback|browser|id-jag)\.ts$/, 'the full client'],
  [/node_modules\/(oauth4webapi|jose|undici)\//, 'an OAuth or HTTP library'],
];

describe('mcp-warden-client connect: what the steady state loads', () => {
  let out: string;
  let outputs: Record<string, Output>;

  before(() => {
    out = mkdtempSync(join(tmpdir(), 'warden-connect-footprint-'));
    const r = spawnSync(process.execPath, [join(ROOT, 'packages/client/build.mjs'), join(out, 'dist'), '--meta', join(out, 'meta.json'), '--no-types'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `build.mjs failed:\n${r.stdout}\n${r.stderr}`);
    outputs = (JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { outputs: Record<string, Output> }).outputs;
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  /** Every source module evaluated once the outputs `from` are loaded, following static imports only. */
  function staticallyLoaded(from: string[]): Set<string> {
    const chunks = new Set<string>();
    const visit = (path: string) => {
      if (chunks.has(path) || !outputs[path]) return;
      chunks.add(path);
      for (const imported of outputs[path].imports) if (imported.kind === 'import-statement') visit(imported.path);
    };
    from.forEach(visit);
    return new Set([...chunks].flatMap((chunk) => Object.keys(outputs[chunk]!.inputs)));
  }

  it('MCP 2025-11-25 transports §Streamable HTTP: connect relays with its own client; the MCP SDK, the full OAuth client and undici load only on demand', () => {
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
