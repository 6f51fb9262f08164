/**
 * Where the CPU goes per request at c=32, counting only time on a CPU: Linux `perf record -e
 * cpu-clock -g` (perf-record(1)) on the gateway and on the stricter line (bench/gateway-servers.ts
 * proxy-dispatch), with `node --perf-basic-prof` so that JavaScript frames carry their names.
 * `--cpu-prof` (bench/profile-gateway.ts) samples on a wall-clock interval and counts a thread
 * that was preempted as busy in whatever it last ran, and it sees neither the kernel nor V8's own
 * C++; a `cpu-clock` sample is taken only while the thread runs, wherever it runs. So this is the
 * profile to compare two processes by on a busy 2-core machine.
 * Run: npm run bench -- oncpu-profile [--rounds N] [--requests N] [--top N] [--symbols N]   (needs `perf`)
 * (docs/benchmarks.md quotes `--rounds 3`, the default).
 *
 * Targets (bench/fixtures/mcp-load.ts startCpuTargets): the line, the gateway's /mcp/http-policy
 * (JWT, scope, policy, audit) and its /mcp/http (JWT, scope), each warmed once with `--requests`
 * tools/call; then per round, in turn (the order reversed every other round), each recorded for
 * `--requests` tools/call at c=32. perf slows what it records; every target is recorded alike.
 * Shown:
 *   - µs on a CPU per request, the main thread and the other threads, per round;
 *   - the main thread's samples by origin (the kernel, the node binary: V8, its builtins, libuv,
 *     llhttp; JavaScript by file) for the policy route against the line, medians over rounds;
 *   - the gateway's own functions (src/) by inclusive time: each with what it calls, so
 *     `parseJsonRpcBody` includes the `JSON.parse` it runs;
 *   - with `--symbols N`, the N symbols (a builtin, a kernel function, a node: internal) whose
 *     self time differs most between the policy route and the line, within each origin that
 *     differs by 1 µs or more: which of V8's or node's own steps the gateway runs more of.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachTracer, closeSession, countOption, inTurn, load, median, startCpuTargets, startServersChild, stopChildren, type CpuTarget } from './fixtures/mcp-load.ts';

const ROUNDS = countOption('--rounds', 3);
const REQUESTS = countOption('--requests', 20_000);
const TOP = countOption('--top', 25);
const SYMBOLS = countOption('--symbols', 0);
const C = 32;
/**
 * Samples per second per thread (one every 250 µs on a CPU: ~15 000–20 000 per target and round
 * here). Asked with --strict-freq, so perf fails rather than sampling less often than asked when
 * the kernel's perf_event_max_sample_rate is lower; figures are from each sample's own period.
 */
const FREQUENCY = 4000;

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
  /** Main thread, self time per symbol (origin, tab, symbol), µs per request. */
  symbols: Map<string, number>;
}

/**
 * A frame of `perf script` (`<ip> <symbol> (<dso>)`) without its address and its object file, and
 * a JavaScript frame without V8's tier marker (`JS:*f`, `JS:~f`): one function is one symbol
 * whether it ran optimized in one process and interpreted in the other.
 */
function symbolOf(frame: string): string {
  return frame.replace(/^[0-9a-f]+ /, '').replace(/ \([^()]*\)$/, '').replace(/\+0x[0-9a-f]+$/, '').replace(/^JS:[*~^+]/, 'JS:');
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
  if (/ (?:JS:|wasm-function|RegExp:)/.test(frame)) return 'js: other JIT code (wasm, regexps, stubs)';
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

/**
 * A gateway function's name and place, from a JIT frame of this tree's src/ (not a package's):
 * `JS:<tier>name file:///…/src/x.ts:1:2 (…)`, the name possibly of two words (`get x`) or empty;
 * the tier is one of V8's markers (`*` optimized, `~` interpreted, `^` baseline, `+` Maglev).
 */
function ownFunction(frame: string): string | undefined {
  const m = /JS:[*~^+]?(.*?)\s*file:\/\/(\S*?)\/src\/(\S+?)(\?\S*)?:\d+:\d+ \(/.exec(frame);
  if (!m || m[2]!.includes('/node_modules/')) return undefined;
  return `${m[1] || '(anonymous)'} (src/${m[3]})`;
}

function analyse(data: string, pid: number): Profile {
  const script = spawnSync('perf', ['script', '-i', data, '-F', 'tid,period,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (script.status !== 0) throw new Error(`perf script failed: ${script.stderr}`);
  const origins = new Map<string, number>();
  const own = new Map<string, number>();
  const symbols = new Map<string, number>();
  let main = 0;
  let others = 0;
  // One sample per block: a line `<tid> <period in ns>`, then its stack, innermost frame first.
  for (const sample of script.stdout.split('\n\n')) {
    const lines = sample.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const [tid, period] = lines[0]!.trim().split(/\s+/).map(Number) as [number, number];
    if (!Number.isFinite(period)) throw new Error(`perf script: no period in "${lines[0]}"`);
    if (tid !== pid) {
      others += period;
      continue;
    }
    main += period;
    const frames = lines.slice(1).map((l) => l.trim());
    if (frames.length === 0) continue;
    const where = origin(frames[0]!);
    origins.set(where, (origins.get(where) ?? 0) + period);
    const symbol = `${where}\t${symbolOf(frames[0]!)}`;
    symbols.set(symbol, (symbols.get(symbol) ?? 0) + period);
    const seen = new Set<string>();
    for (const f of frames) {
      const name = ownFunction(f);
      if (name !== undefined && !seen.has(name)) {
        seen.add(name);
        own.set(name, (own.get(name) ?? 0) + period);
      }
    }
  }
  const perRequest = (ns: number): number => ns / 1000 / REQUESTS;
  return {
    main: perRequest(main),
    others: perRequest(others),
    origins: new Map([...origins].map(([k, v]) => [k, perRequest(v)])),
    own: new Map([...own].map(([k, v]) => [k, perRequest(v)])),
    symbols: new Map([...symbols].map(([k, v]) => [k, perRequest(v)])),
  };
}

/** perf's data file of `target` over `REQUESTS` tools/call at c=32. */
async function record(target: CpuTarget, file: string): Promise<string> {
  const data = join(dir, `${file}.data`);
  // perf attaches to every thread before it samples: 700 ms to do so.
  const perf = await attachTracer('perf', ['record', '-q', '--strict-freq', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-g', '-p', String(target.pid), '-o', data], 700);
  await load(target.session, C, REQUESTS);
  await perf.stop();
  return data;
}

/**
 * V8 appends a line to /tmp/perf-<pid>.map for each piece of code it makes, and never says when
 * one is freed; a later function compiled at the same address then shares it with the earlier one,
 * and perf may name a sample after the one that is gone. Once the process has exited, each
 * address is given to the newest code that covered it: read newest first, an entry is kept only
 * where nothing newer (kept or not) covered any of its bytes. What ran once the targets were warm
 * is the newest code, mostly; a sample of a function freed before the end may still go unnamed or
 * be named after its successor, and perf's `--jit` injection would be needed to date each one.
 */
function newestCodeOnly(pid: number): void {
  const path = `/tmp/perf-${pid}.map`;
  const entries = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    const [start, size] = line.split(' ', 2) as [string, string];
    const from = parseInt(start, 16);
    return { line, from, to: from + parseInt(size, 16) };
  });
  const kept: string[] = [];
  // Every range seen so far (newer than the current entry), merged, sorted by start.
  const covered: { from: number; to: number }[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    // The first covered range that ends after e starts: the only one that can overlap e first.
    let lo = 0;
    let hi = covered.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (covered[mid]!.to <= e.from) lo = mid + 1;
      else hi = mid;
    }
    if (lo === covered.length || covered[lo]!.from >= e.to) kept.push(e.line);
    // Merge e into `covered`: every range from `lo` on that touches it becomes one.
    let end = lo;
    let from = e.from;
    let to = e.to;
    while (end < covered.length && covered[end]!.from <= to) {
      from = Math.min(from, covered[end]!.from);
      to = Math.max(to, covered[end]!.to);
      end++;
    }
    covered.splice(lo, end - lo, { from, to });
  }
  writeFileSync(path, kept.reverse().join('\n') + '\n');
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  // --perf-basic-prof also has V8 write a log of its code events, by default into the working
  // directory: into the run's directory instead, one file per process.
  const nodeArgs = (label: string): string[] => ['--perf-basic-prof', `--logfile=${join(dir, `${label}-v8.log`)}`, '--no-logfile-per-isolate'];
  // The line first: the tables below read each target against it.
  const [policy, jwt, line] = await startCpuTargets(upstream, { connections: C, warmup: REQUESTS, nodeArgs }) as [CpuTarget, CpuTarget, CpuTarget];
  const targets = [line, policy, jwt];
  const recorded = new Map<string, string[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of inTurn(targets, round)) {
      recorded.get(t.name)!.push(await record(t, `target${targets.indexOf(t)}-round${round}`));
      console.error(`  round ${round + 1}/${ROUNDS}: ${t.name} recorded`);
    }
  }
  for (const t of targets) await closeSession(t.session);
  // The maps are read once the processes are gone and write no more to them.
  for (const child of new Set(targets.map((t) => t.child))) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  const pids = [...new Set(targets.map((t) => t.pid))];
  for (const pid of pids) newestCodeOnly(pid);
  const profiles = new Map<string, Profile[]>(targets.map((t) => [t.name, recorded.get(t.name)!.map((data) => analyse(data, t.pid))]));
  for (const pid of pids) rmSync(`/tmp/perf-${pid}.map`, { force: true });

  const med = (label: string, pick: (p: Profile) => number): number => median(profiles.get(label)!.map(pick));
  console.log(`\nc=${C}, ${ROUNDS} rounds of ${REQUESTS} tools/call per target, perf cpu-clock at ${FREQUENCY} Hz; µs on a CPU per request, medians over rounds\n`);
  console.log('| target | main thread | other threads | main thread / the line\'s, per round |');
  console.log('|---|---|---|---|');
  const lineMain = profiles.get(line.name)!.map((p) => p.main);
  for (const t of targets) {
    const ratios = profiles.get(t.name)!.map((p, i) => (p.main / lineMain[i]!).toFixed(3)).join(', ');
    console.log(`| ${t.name} | ${med(t.name, (p) => p.main).toFixed(1)} | ${med(t.name, (p) => p.others).toFixed(1)} | ${ratios} |`);
  }

  const [lineLabel, policyLabel] = [line.name, policy.name];
  const originNames = [...new Set([...profiles.values()].flat().flatMap((p) => [...p.origins.keys()]))];
  const rows = originNames
    .map((origin) => ({ origin, line: med(lineLabel, (p) => p.origins.get(origin) ?? 0), policy: med(policyLabel, (p) => p.origins.get(origin) ?? 0) }))
    .sort((a, b) => b.policy - b.line - (a.policy - a.line));
  console.log(`\nMain thread, self time by origin (the policy route against the line; µs per request):\n`);
  console.log('| origin | the line | policy route | difference |');
  console.log('|---|---|---|---|');
  // Every origin, those where the line spends more included (its own handler, bench/gateway-servers.ts).
  for (const row of rows) {
    if (Math.max(row.line, row.policy) < 0.1) continue;
    const difference = row.policy - row.line;
    console.log(`| ${row.origin} | ${row.line.toFixed(2)} | ${row.policy.toFixed(2)} | ${(difference >= 0 ? '+' : '') + difference.toFixed(2)} |`);
  }

  const ownNames = [...new Set(profiles.get(policyLabel)!.flatMap((p) => [...p.own.keys()]))];
  const own = ownNames.map((name) => ({ name, us: med(policyLabel, (p) => p.own.get(name) ?? 0) })).sort((a, b) => b.us - a.us);
  console.log(`\nThe gateway's own functions on the policy route, main thread, inclusive (with what they call; nested ones counted in each): µs per request\n`);
  console.log('| function | µs per request |');
  console.log('|---|---|');
  for (const row of own.slice(0, TOP)) console.log(`| ${row.name} | ${row.us.toFixed(2)} |`);
  if (SYMBOLS > 0) {
    const names = [...new Set([...profiles.values()].flat().flatMap((p) => [...p.symbols.keys()]))];
    const bySymbol = names.map((key) => {
      const [where, symbol] = key.split('\t') as [string, string];
      return { where, symbol, line: med(lineLabel, (p) => p.symbols.get(key) ?? 0), policy: med(policyLabel, (p) => p.symbols.get(key) ?? 0) };
    });
    for (const row of rows) {
      if (Math.abs(row.policy - row.line) < 1 || row.origin.startsWith('js: src/') || row.origin.startsWith('js: bench/')) continue;
      const top = bySymbol.filter((x) => x.where === row.origin).sort((a, b) => Math.abs(b.policy - b.line) - Math.abs(a.policy - a.line)).slice(0, SYMBOLS);
      console.log(`\n${row.origin}: self time by symbol, the policy route against the line (µs per request)\n`);
      console.log('| symbol | the line | policy route | difference |');
      console.log('|---|---|---|---|');
      for (const x of top) console.log(`| ${x.symbol.replaceAll('|', '\\|')} | ${x.line.toFixed(2)} | ${x.policy.toFixed(2)} | ${(x.policy >= x.line ? '+' : '') + (x.policy - x.line).toFixed(2)} |`);
    }
  }
  console.log(`\nperf data: ${dir}`);
} finally {
  stopChildren();
}
