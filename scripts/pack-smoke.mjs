#!/usr/bin/env node
// The pack smoke test (`npm run pack:smoke`, run by .ci/run): what a user gets from the registry,
// not the checkout. Packs both packages (prepack builds them), installs each tarball into its own
// empty folder and, with plain Node (no TypeScript loader), runs:
//   1. `mcp-warden --version` and `mcp-warden-client --version`;
//   2. `import { WardenClient } from 'mcp-warden/client'` and from 'mcp-warden-client';
//   3. `mcp-warden start --demo` from the install, until POST /mcp answers 401 (RFC 6750 §3);
//   4. `mcp-warden-client connect` against it (client credentials as the demo's `demo-agent`, so
//      no browser), driven by the MCP SDK's stdio client as a host would: initialize, tools/list.
// It also checks that the light client's install holds no native addon and no server package.
// Exit status 0 when every step passed; each step prints one line.
//
// The native SQLite addon: `npm install` of the server tarball runs with --ignore-scripts. On a
// Node that loads better-sqlite3 13 (Node-API 10: Node 22.14 and later) nothing more is needed, its
// addons ship in the package; on one that loads 12 (Node 20) the addon the checkout already built
// is copied in, because compiling SQLite again takes minutes on CI. PACK_SMOKE_NATIVE=1 runs the
// real install scripts.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { footprint, install, pack, run } from './pack-lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'warden-pack-smoke-'));
const keep = process.argv.includes('--keep');
const children = [];

function step(message) {
  console.log(`pack-smoke: ${message}`);
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor(condition, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main() {
  step(`working in ${work}`);
  const serverTarball = pack(root, work);
  const clientTarball = pack(root, work, ['-w', 'mcp-warden-client']);
  for (const tarball of [serverTarball, clientTarball]) {
    const listing = run('tar', ['tzf', tarball]).split('\n').filter(Boolean);
    const stray = listing.filter((f) => /^package\/(src|test|bench|\.ci|scripts|conformance)\//.test(f));
    if (stray.length) throw new Error(`${tarball} ships files that do not run: ${stray.slice(0, 5).join(', ')}`);
    step(`packed ${tarball.slice(work.length + 1)}: ${listing.length} files, ${(statSync(tarball).size / 1e6).toFixed(2)} MB`);
  }

  const serverDir = join(work, 'server');
  install(serverDir, serverTarball, { nativeFrom: process.env.PACK_SMOKE_NATIVE ? undefined : root });
  const clientDir = join(work, 'client');
  install(clientDir, clientTarball);
  const light = footprint(clientDir);
  if (light.native.length) throw new Error(`the light client installs a native addon: ${light.native[0]}`);
  for (const server of ['better-sqlite3', 'better-sqlite3-12', 'oidc-provider', '@modelcontextprotocol/server']) {
    if (existsSync(join(clientDir, 'node_modules', server))) throw new Error(`the light client installs ${server}`);
  }
  const full = footprint(serverDir);
  step(`installed: mcp-warden ${(full.bytes / 1e6).toFixed(1)} MB in ${full.packages.length} packages, mcp-warden-client ${(light.bytes / 1e6).toFixed(1)} MB in ${light.packages.length} (no native addon)`);

  const wardenBin = join(serverDir, 'node_modules/.bin/mcp-warden');
  const clientBin = join(clientDir, 'node_modules/.bin/mcp-warden-client');
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  // A clean environment, as a user's shell gives: plain Node, no loader, no WARDEN_* from ours.
  const home = join(work, 'home');
  mkdirSync(home);
  const env = { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' };
  for (const [bin, name] of [[wardenBin, 'mcp-warden'], [clientBin, 'mcp-warden-client']]) {
    const out = run(bin, ['--version'], { env }).trim();
    if (out !== `${name} ${version}`) throw new Error(`${name} --version printed "${out}"`);
    step(`${name} --version: ${out}`);
  }
  for (const [dir, specifier] of [[serverDir, 'mcp-warden/client'], [clientDir, 'mcp-warden-client']]) {
    const code = `const { WardenClient } = await import(${JSON.stringify(specifier)}); if (typeof WardenClient !== 'function') process.exit(1);`;
    run(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, env });
    step(`import { WardenClient } from '${specifier}' on plain Node`);
  }

  const port = await freePort();
  const base = `http://localhost:${port}`;
  const secret = randomBytes(18).toString('base64url');
  const runDir = join(work, 'run');
  mkdirSync(runDir);
  const warden = spawn(wardenBin, ['start', '--demo'], {
    cwd: runDir,
    env: { ...env, PORT: String(port), WARDEN_DEMO_PASSWORD: randomBytes(18).toString('base64url'), WARDEN_DEMO_CLIENT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(warden);
  let log = '';
  warden.stdout.setEncoding('utf8').on('data', (c) => (log += c));
  warden.stderr.setEncoding('utf8').on('data', (c) => (log += c));
  warden.once('exit', (code, signal) => (log += `\n[exited ${signal ?? code}]`));
  let status = 0;
  await waitFor(async () => {
    if (warden.exitCode !== null) throw new Error(`mcp-warden start --demo exited:\n${log}`);
    try {
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
      });
      await res.arrayBuffer();
      status = res.status;
      return status === 401 && /^Bearer /.test(res.headers.get('www-authenticate') ?? '');
    } catch {
      return false; // not listening yet
    }
  }, 'the first 401 at /mcp');
  step(`mcp-warden start --demo: POST ${base}/mcp → ${status} with a Bearer challenge`);

  const transport = new StdioClientTransport({
    command: clientBin,
    args: ['connect', `${base}/mcp`, '--client-credentials', '--client-id', 'demo-agent', '--token-store', 'file'],
    env: { ...env, MCP_WARDEN_CLIENT_SECRET: secret, MCP_WARDEN_HOME: join(home, 'warden') },
    stderr: 'pipe',
  });
  let bridgeLog = '';
  transport.stderr?.on('data', (c) => (bridgeLog += c));
  const client = new Client({ name: 'pack-smoke', version });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    if (!Array.isArray(tools)) throw new Error('tools/list answered without a tools array');
    step(`mcp-warden-client connect: tools/list answered through the bridge (${tools.length} tools: ${tools.map((t) => t.name).join(', ')})`);
  } catch (err) {
    throw new Error(`mcp-warden-client connect failed: ${err.message}\nbridge stderr:\n${bridgeLog}\nwarden log:\n${log}`, { cause: err });
  } finally {
    await client.close();
  }
}

try {
  await main();
  step('passed');
} catch (err) {
  console.error(`pack-smoke: FAILED: ${err.message}`);
  process.exitCode = 1;
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  if (!keep) rmSync(work, { recursive: true, force: true });
}
