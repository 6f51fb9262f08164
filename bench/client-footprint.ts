/**
 * `npm run bench -- client-footprint`: what running `connect` costs a desktop user, for the light
 * client package (`mcp-warden-client`) side by side with the full package (`mcp-warden`, compiled)
 * and today's full package (the last one before the split: TypeScript through tsx at run time).
 * Budgets (docs/benchmarks.md, "Client footprint"): install ≤ 15 MB with no native addon; idle
 * `connect` ≤ 60 MB RSS; `connect` to its first answered `tools/list` with a stored token ≤ 400 ms.
 *
 * Method:
 * - Each package is packed (`npm pack`) and installed from its tarball into its own empty folder
 *   with `npm install` (registry resolution, no lock file), as a user's `npx -y` does. Size is the
 *   sum of file sizes under node_modules (on Node 20, better-sqlite3 12's addon copied from the
 *   checkout: only the `.node` file, as a prebuilt install has, not the checkout's compile
 *   leftovers; better-sqlite3 13 ships its addons, for eight platforms, in its package).
 * - One gateway: the compiled `mcp-warden start --demo` from its install, on a free loopback port.
 * - A token is stored once (`mcp-warden-client token --client-credentials` as `demo-agent`, file
 *   store in a temp MCP_WARDEN_HOME); every `connect` after that finds it fresh in the store.
 * - Per round and per package, interleaved so machine load hits all alike: the MCP SDK's stdio
 *   client spawns the installed bin (`<bin> connect <url> …`), as a host does; time from before
 *   the spawn to the answered `tools/list` (initialize, initialized, tools/list through the bridge
 *   and the gateway). Then the bridge idles 8 s (`--idle-ms`) and its VmRSS is read from /proc/<pid>/status.
 * - The floor: the same initialize + tools/list by the SDK client inside this process, straight to
 *   the gateway with the token: what the gateway and its upstream take (the demo's stdio upstream
 *   starts a notes server process per session), which no client can save.
 * - Medians over the rounds (default 7; `--rounds N`). `--baseline REF` names today's package
 *   (a git commit; default: the last commit before the split). `--previous-bridge REF` names the
 *   light package to compare the bridge with (default: the last one on the MCP SDK's transports),
 *   built from that commit's tree as its prepack does. `--json` for machine output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { footprint, install, pack, run } from '../scripts/pack-lib.mjs';
import { median } from './fixtures/median.ts';

const ROOT = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const ROUNDS = Number(option('--rounds') ?? 7);
/** The last commit before the package split (compiled dist/, the mcp-warden-client workspace). */
const BASELINE = option('--baseline') ?? 'a7f5014';
/** The last commit whose bridge ran on the MCP SDK's transports (zod, fetch) in every state. */
const PREVIOUS_BRIDGE = option('--previous-bridge') ?? 'b238c1c';
const JSON_OUT = args.includes('--json');
/** NODE_OPTIONS for the spawned `connect` processes (to try V8 settings; none by default). */
const NODE_OPTIONS = option('--node-options') ?? '';
const IDLE_MS = Number(option('--idle-ms') ?? 8000);

const BUDGET = { installMB: 15, idleRssMB: 60, firstListMs: 400 };

interface System {
  name: string;
  bin: string;
  installMB: number;
  packages: number;
  native: number;
  firstListMs: number[];
  idleRssMB: number[];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb[1]) / 1024;
}

async function untilUnauthorized(url: string, warden: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (warden.exitCode !== null) throw new Error(`mcp-warden start --demo exited:\n${log()}`);
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
      await res.arrayBuffer();
      if (res.status === 401) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no 401 at ${url}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'warden-bench-footprint-'));
  const children: ChildProcess[] = [];
  try {
    // Today's package: the baseline commit's tree, packed as it was published (no build step).
    const todaySrc = join(work, 'today-src');
    mkdirSync(todaySrc);
    run('bash', ['-c', `git -C "${ROOT}" archive ${BASELINE} | tar -x -C "${todaySrc}"`]);
    // The previous bridge: that commit's light package, built by its own prepack (esbuild and the
    // bundled dependencies from this checkout's node_modules).
    const previousSrc = join(work, 'previous-src');
    mkdirSync(previousSrc);
    run('bash', ['-c', `git -C "${ROOT}" archive ${PREVIOUS_BRIDGE} | tar -x -C "${previousSrc}"`]);
    symlinkSync(join(ROOT, 'node_modules'), join(previousSrc, 'node_modules'));
    // Each tarball in its own folder: two packages of one name and version pack to the same file
    // name, and the second would replace the first.
    const packInto = (key: string, cwd: string, extra: string[] = []) => {
      const destination = join(work, 'tarballs', key);
      mkdirSync(destination, { recursive: true });
      return pack(cwd, destination, extra);
    };
    const tarballs = {
      today: packInto('today', todaySrc),
      full: packInto('full', ROOT),
      light: packInto('light', ROOT, ['-w', 'mcp-warden-client']),
      previous: packInto('previous', previousSrc, ['-w', 'mcp-warden-client']),
    };
    const systems: System[] = [];
    for (const [key, name, bin] of [
      ['today', `mcp-warden (today, ${BASELINE}: tsx at run time)`, 'mcp-warden'],
      ['full', 'mcp-warden (compiled dist/)', 'mcp-warden'],
      ['light', 'mcp-warden-client', 'mcp-warden-client'],
      ['previous', `mcp-warden-client, previous bridge (${PREVIOUS_BRIDGE}: MCP SDK transports)`, 'mcp-warden-client'],
    ] as const) {
      const folder = join(work, key);
      install(folder, tarballs[key], { nativeFrom: ROOT });
      const f = footprint(folder);
      systems.push({ name, bin: join(folder, 'node_modules/.bin', bin), installMB: f.bytes / 1e6, packages: f.packages.length, native: f.native.length, firstListMs: [], idleRssMB: [] });
    }

    const port = await freePort();
    const endpoint = `http://localhost:${port}/mcp`;
    const secret = randomBytes(18).toString('base64url');
    const home = join(work, 'home');
    mkdirSync(home);
    const env = { PATH: process.env.PATH ?? '', HOME: home, LANG: 'C.UTF-8' };
    const runDir = join(work, 'run');
    mkdirSync(runDir);
    const warden = spawn(systems[1]!.bin, ['start', '--demo'], {
      cwd: runDir,
      env: { ...env, PORT: String(port), WARDEN_DEMO_PASSWORD: randomBytes(18).toString('base64url'), WARDEN_DEMO_CLIENT_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(warden);
    let log = '';
    warden.stdout!.setEncoding('utf8').on('data', (c: string) => (log += c));
    warden.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
    await untilUnauthorized(endpoint, warden, () => log);

    const clientArgs = ['--client-credentials', '--client-id', 'demo-agent', '--token-store', 'file'];
    const clientEnv = { ...env, MCP_WARDEN_CLIENT_SECRET: secret, MCP_WARDEN_HOME: join(home, 'warden'), NODE_OPTIONS };
    const token = run(systems[2]!.bin, ['token', endpoint, ...clientArgs], { env: clientEnv }).trim();

    // The floor: the same exchange by the SDK client in this process, straight to the gateway over
    // HTTP with the token (no process start, no bridge); what the gateway and its upstream cost.
    const floorMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const client = new Client({ name: 'bench-footprint-floor', version: '0' });
      const started = process.hrtime.bigint();
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      await client.listTools();
      floorMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      await client.close();
    }

    for (let round = 0; round < ROUNDS; round++) {
      for (const system of systems) {
        const transport = new StdioClientTransport({ command: system.bin, args: ['connect', endpoint, ...clientArgs], env: clientEnv, stderr: 'pipe' });
        let stderr = '';
        transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
        const client = new Client({ name: 'bench-footprint', version: '0' });
        const started = process.hrtime.bigint();
        try {
          await client.connect(transport);
          const { tools } = await client.listTools();
          if (tools.length === 0) throw new Error('tools/list answered with no tools');
        } catch (err) {
          throw new Error(`${system.name}: ${(err as Error).message}\n${stderr}`, { cause: err });
        }
        system.firstListMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        // Idle: the bridge has answered and waits on stdin; V8's memory reducer runs a few seconds
        // after allocation stops, so RSS is read once that had time to happen.
        await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
        system.idleRssMB.push(rssMB(transport.pid!));
        await client.close();
      }
    }

    // RSS references: what any Node bridge pays before its own code (Node alone; Node with fetch
    // used once and zod loaded, both of which the MCP SDK's transports need; Node with one
    // node:http request, all the bridge's steady state needs).
    const references = [
      { name: 'reference: node alone, idle on stdin', code: 'process.stdin.resume();' },
      { name: 'reference: node + one fetch + zod loaded', code: `await import('zod'); await fetch(${JSON.stringify(endpoint)}).catch(() => {}); process.stdin.resume();` },
      // What the bridge's steady state needs instead: one request on node:http.
      { name: 'reference: node + one node:http request', code: `const { request } = await import('node:http'); await new Promise((done) => { const req = request(${JSON.stringify(endpoint)}, { method: 'POST' }, (res) => { res.resume(); res.on('end', done); }); req.on('error', done); req.end(); }); process.stdin.resume();` },
    ].map((r) => ({ ...r, rssMB: [] as number[] }));
    for (let round = 0; round < Math.min(ROUNDS, 3); round++) {
      for (const ref of references) {
        const child = spawn(process.execPath, ['--input-type=module', '-e', ref.code], { cwd: ROOT, env: { PATH: env.PATH, NODE_OPTIONS }, stdio: ['pipe', 'ignore', 'ignore'] });
        await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
        ref.rssMB.push(rssMB(child.pid!));
        child.kill();
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }

    const rows = systems.map((s) => ({
      system: s.name,
      installMB: Number(s.installMB.toFixed(1)),
      packages: s.packages,
      nativeAddons: s.native,
      idleRssMB: Number(median(s.idleRssMB).toFixed(1)),
      idleRssMBRange: [Math.min(...s.idleRssMB), Math.max(...s.idleRssMB)].map((x) => Number(x.toFixed(1))),
      firstListMs: Math.round(median(s.firstListMs)),
      firstListMsRange: [Math.round(Math.min(...s.firstListMs)), Math.round(Math.max(...s.firstListMs))],
    }));
    const light = rows[2]!;
    const goals = [
      { goal: `light client install ≤ ${BUDGET.installMB} MB, no native addon`, met: light.installMB <= BUDGET.installMB && light.nativeAddons === 0, value: `${light.installMB} MB, ${light.nativeAddons} addons` },
      { goal: `idle connect ≤ ${BUDGET.idleRssMB} MB RSS`, met: light.idleRssMB <= BUDGET.idleRssMB, value: `${light.idleRssMB} MB` },
      { goal: `connect → first tools/list ≤ ${BUDGET.firstListMs} ms (stored token)`, met: light.firstListMs <= BUDGET.firstListMs, value: `${light.firstListMs} ms` },
    ];
    const floor = Math.round(median(floorMs));
    if (JSON_OUT) {
      console.log(JSON.stringify({ rounds: ROUNDS, node: process.version, previousBridge: PREVIOUS_BRIDGE, nodeOptions: NODE_OPTIONS, floorMs: floor, references: references.map((r) => ({ name: r.name, rssMB: median(r.rssMB) })), rows, goals }, null, 2));
    } else {
      console.log(`client footprint, ${ROUNDS} rounds, Node ${process.version}${NODE_OPTIONS ? `, NODE_OPTIONS=${NODE_OPTIONS}` : ''} (medians)\n`);
      console.log('| package | install (MB) | packages | native addons | idle connect RSS (MB) [min–max] | connect → tools/list (ms) [min–max] |');
      console.log('| --- | --- | --- | --- | --- | --- |');
      for (const r of rows) console.log(`| ${r.system} | ${r.installMB} | ${r.packages} | ${r.nativeAddons} | ${r.idleRssMB} [${r.idleRssMBRange.join('–')}] | ${r.firstListMs} [${r.firstListMsRange.join('–')}] |`);
      console.log(`| floor: SDK client in process → gateway over HTTP (no spawn, no bridge) | | | | | ${floor} [${Math.round(Math.min(...floorMs))}–${Math.round(Math.max(...floorMs))}] |`);
      for (const r of references) console.log(`| ${r.name} | | | | ${median(r.rssMB).toFixed(1)} | |`);
      console.log('');
      for (const g of goals) console.log(`${g.met ? 'met' : 'MISSED'}: ${g.goal}: ${g.value}`);
    }
    if (!goals.every((g) => g.met)) process.exitCode = 1;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
