/**
 * Where the CPU goes per request at c=32, counting only time on a CPU: Linux `perf record -e
 * cpu-clock -g` (perf-record(1)) on the gateway and on the stricter line (bench/gateway-servers.ts
 * proxy-dispatch), with `node --perf-basic-prof` so that JavaScript frames carry their names.
 * `--cpu-prof` (bench/profile-gateway.ts) samples on a wall-clock interval and counts a thread
 * that was preempted as busy in whatever it last ran, and it sees neither the kernel nor V8's own
 * C++; a `cpu-clock` sample is taken only while the thread runs, wherever it runs. So this is the
 * profile to compare two processes by on a busy 2-core machine.
 * Run: npm run bench -- oncpu-profile [--rounds N] [--requests N] [--top N]   (needs `perf`)
 *
 * Per round, in turn (the order reversed every other round): the line, the gateway's
 * /mcp/http-policy (JWT, scope, policy, audit) and its /mcp/http (JWT, scope), each warmed first,
 * then recorded for `--requests` tools/call at c=32. perf slows what it records (~1.3× here), the
 * same for each target. Shown:
 *   - µs on a CPU per request, the main thread and the other threads, per round;
 *   - the main thread's samples by origin (the kernel, the node binary: V8, its builtins, libuv,
 *     llhttp; JavaScript by file) for the policy route against the line, medians over rounds;
 *   - the gateway's own functions (src/) by inclusive time: each with what it calls, so
 *     `parseJsonRpcBody` includes the `JSON.parse` it runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeSession, countOption, inTurn, load, median, openSession, startServersChild, stopChildren, type Target } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 2);
const REQUESTS = countOption('--requests', 20_000);
const TOP = countOption('--top', 25);
const C = 32;
/** Samples per second: 4 kHz gives ~40 000 samples per target and round at ~15 µs each. */
const FREQUENCY = 4000;
const SAMPLE_US = 1e6 / FREQUENCY;

if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('oncpu-profile needs Linux perf (Debian: apt-get install linux-perf)');
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'warden-oncpu-'));

interface Profile {
  /** µs per request on the main thread, and on all others. */
  main: number;
  others: number;
  /** Main thread, self time per origin, µs per request. */
  origins: Map<string, number>;
  /** Main thread, inclusive time per function of the gateway's own source, µs per request. */
  own: Map<string, number>;
}

/** The origin a frame's time is counted under: the kernel, the node binary, or a JavaScript file. */
function origin(frame: string): string {
  if (frame.endsWith('([kernel.kallsyms])')) return 'kernel';
  const js = /JS:\S*\s+(?:\S+\s+)?(\S+?):\d+:\d+ \(/.exec(frame);
  if (js) {
    const file = js[1]!;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (pkg) return `js: ${pkg[1]}`;
    if (file.startsWith('node:')) return 'js: node: internals';
    const src = /\/(src|bench)\/(.*?)(\?.*)?$/.exec(file);
    return src ? `js: ${src[1]}/${src[2]}` : `js: ${file}`;
  }
  if (/JS:|wasm-function|RegExp:/.test(frame)) return 'js: other JIT code (wasm, regexps, stubs)';
  if (frame.includes('(/usr/bin/node)') || /\(\S*\/node\)$/.test(frame)) {
    if (/ Builtins_/.test(frame)) return 'node: V8 builtins (property access, promises, maps, calls)';
    if (/JsonParser|JsonStringifier/.test(frame)) return 'node: V8 JSON.parse and JSON.stringify';
    if (/Heap::|Scavenger|MarkCompact|GCTracer|MemoryAllocator/.test(frame)) return 'node: V8 garbage collection';
    if (/v8::internal::/.test(frame)) return 'node: V8 runtime (strings, maps of objects, compiler)';
    if (/llhttp/.test(frame)) return 'node: llhttp';
    if (/ uv_|uv__/.test(frame)) return 'node: libuv';
    return 'node: other (its C++ bindings)';
  }
  return 'shared libraries (libc, libstdc++, addons)';
}

/** A gateway function's name and place, from a JIT frame of src/. */
function ownFunction(frame: string): string | undefined {
  const m = /JS:[*~^]?(\S*)\s+file:\/\/\S*\/src\/(\S+?)(\?\S*)?:\d+:\d+ \(/.exec(frame);
  return m ? `${m[1] || '(anonymous)'} (src/${m[2]})` : undefined;
}

function analyse(data: string, pid: number): Profile {
  const r = spawnSync('perf', ['script', '-i', data, '-F', 'tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`perf script failed: ${r.stderr}`);
  const origins = new Map<string, number>();
  const own = new Map<string, number>();
  let main = 0;
  let others = 0;
  for (const sample of r.stdout.split('\n\n')) {
    const lines = sample.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const tid = Number(lines[0]!.trim().split(/\s+/)[0]);
    if (tid !== pid) {
      others++;
      continue;
    }
    main++;
    const frames = lines.slice(1).map((l) => l.trim());
    if (frames.length === 0) continue;
    const o = origin(frames[0]!);
    origins.set(o, (origins.get(o) ?? 0) + 1);
    const seen = new Set<string>();
    for (const f of frames) {
      const name = ownFunction(f);
      if (name !== undefined && !seen.has(name)) {
        seen.add(name);
        own.set(name, (own.get(name) ?? 0) + 1);
      }
    }
  }
  const perRequest = (n: number): number => (n * SAMPLE_US) / REQUESTS;
  return {
    main: perRequest(main),
    others: perRequest(others),
    origins: new Map([...origins].map(([k, v]) => [k, perRequest(v)])),
    own: new Map([...own].map(([k, v]) => [k, perRequest(v)])),
  };
}

async function record(target: Target & { pid: number }, label: string): Promise<string> {
  const s = await openSession(target, C);
  await load(s, C, REQUESTS);
  const data = join(dir, `${label}.data`);
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-g', '-p', String(target.pid), '-o', data], { stdio: 'ignore' });
  // perf attaches to every thread before it samples; give it a moment.
  await new Promise((r) => setTimeout(r, 700));
  await load(s, C, REQUESTS);
  const exited = new Promise((r) => perf.once('exit', r));
  perf.kill('SIGINT');
  await exited;
  await closeSession(s);
  return data;
}

/**
 * V8 appends a line to /tmp/perf-<pid>.map for each piece of code it makes, and never says when
 * one is freed; a later function compiled at the same address then shares it with the earlier one,
 * and perf may name a sample after the one that is gone. Once the process has exited, each
 * address is given to the newest code that covered it (later lines win; earlier ones that overlap
 * are dropped), which is what ran once the targets were warm.
 */
function newestCodeOnly(pid: number): void {
  const path = `/tmp/perf-${pid}.map`;
  const entries = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [start, size] = line.split(' ', 2) as [string, string];
    const from = parseInt(start, 16);
    return { line, from, to: from + parseInt(size, 16) };
  });
  const kept: typeof entries = [];
  // Newest first; an entry is kept when no newer one overlaps it (`taken` sorted by start).
  const taken: { from: number; to: number }[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    let lo = 0;
    let hi = taken.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (taken[mid]!.from < e.to) lo = mid + 1;
      else hi = mid;
    }
    // taken[lo - 1] is the last one starting before e ends: it overlaps when it ends after e starts.
    if (lo > 0 && taken[lo - 1]!.to > e.from) continue;
    taken.splice(lo, 0, { from: e.from, to: e.to });
    kept.push(e);
  }
  writeFileSync(path, kept.reverse().map((e) => e.line).join('\n') + '\n');
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const nodeArgs = ['--perf-basic-prof'];
  const line = await startServersChild(['proxy-dispatch', upstream], { nodeArgs });
  const warden = await startServersChild(['warden', upstream], { nodeArgs });
  const targets = [
    { label: 'stricter line (undici dispatch)', name: 'line', url: line.info.url as string, pid: line.child.pid! },
    { label: 'gateway JWT+scope+policy+audit', name: 'policy', url: `${warden.info.url}/mcp/http-policy`, token: warden.info.tokens['http-policy'] as string, pid: warden.child.pid! },
    { label: 'gateway JWT+scope', name: 'jwt', url: `${warden.info.url}/mcp/http`, token: warden.info.tokens.http as string, pid: warden.child.pid! },
  ];
  const recorded = new Map<string, string[]>(targets.map((t) => [t.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of inTurn(targets, round)) {
      recorded.get(t.label)!.push(await record(t, `${t.name}-${round}`));
      console.error(`  round ${round + 1}/${ROUNDS}: ${t.label} recorded`);
    }
  }
  // The maps are read once the processes are gone and write no more to them.
  for (const child of [line.child, warden.child]) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  for (const pid of new Set(targets.map((t) => t.pid))) newestCodeOnly(pid);
  const profiles = new Map<string, Profile[]>(targets.map((t) => [t.label, recorded.get(t.label)!.map((data) => analyse(data, t.pid))]));

  const med = (label: string, pick: (p: Profile) => number): number => median(profiles.get(label)!.map(pick));
  console.log(`\nc=${C}, ${ROUNDS} rounds of ${REQUESTS} tools/call per target, perf cpu-clock at ${FREQUENCY} Hz; µs on a CPU per request, medians over rounds\n`);
  console.log('| target | main thread | other threads | main thread / the line\'s, per round |');
  console.log('|---|---|---|---|');
  const lineMain = profiles.get(targets[0]!.label)!.map((p) => p.main);
  for (const t of targets) {
    const ps = profiles.get(t.label)!;
    const ratios = ps.map((p, i) => (p.main / lineMain[i]!).toFixed(3)).join(', ');
    console.log(`| ${t.label} | ${med(t.label, (p) => p.main).toFixed(1)} | ${med(t.label, (p) => p.others).toFixed(1)} | ${ratios} |`);
  }

  const [lineLabel, policyLabel] = [targets[0]!.label, targets[1]!.label];
  const originNames = [...new Set([...profiles.values()].flat().flatMap((p) => [...p.origins.keys()]))];
  const rows = originNames
    .map((o) => ({ o, line: med(lineLabel, (p) => p.origins.get(o) ?? 0), policy: med(policyLabel, (p) => p.origins.get(o) ?? 0) }))
    .sort((a, b) => b.policy - b.line - (a.policy - a.line));
  console.log(`\nMain thread, self time by origin (the policy route against the line; µs per request):\n`);
  console.log('| origin | the line | policy route | difference |');
  console.log('|---|---|---|---|');
  for (const r of rows.slice(0, TOP)) {
    if (Math.max(r.line, r.policy) < 0.1) continue;
    console.log(`| ${r.o} | ${r.line.toFixed(2)} | ${r.policy.toFixed(2)} | ${(r.policy - r.line >= 0 ? '+' : '') + (r.policy - r.line).toFixed(2)} |`);
  }

  const ownNames = [...new Set(profiles.get(policyLabel)!.flatMap((p) => [...p.own.keys()]))];
  const own = ownNames.map((n) => ({ n, us: med(policyLabel, (p) => p.own.get(n) ?? 0) })).sort((a, b) => b.us - a.us);
  console.log(`\nThe gateway's own functions on the policy route, main thread, inclusive (with what they call; nested ones counted in each): µs per request\n`);
  console.log('| function | µs per request |');
  console.log('|---|---|');
  for (const r of own.slice(0, TOP)) console.log(`| ${r.n} | ${r.us.toFixed(2)} |`);
  console.log(`\nperf data: ${dir}`);
} finally {
  stopChildren();
}
