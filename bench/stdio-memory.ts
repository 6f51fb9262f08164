/**
 * stdio memory per user rather than per session: the memory and process count of N open MCP
 * sessions (initialize + notifications/initialized + one tools/call, then idle) through
 *   - mcp-warden, one child per session (the default),
 *   - mcp-warden, share: per-user, all N sessions of one user,
 *   - mcp-warden, share: per-user, N sessions from 20 users,
 *   - supergateway --stateful (one child per session), no auth,
 * all on the same stdio server (test/gateway/fixtures/tiny-server.mjs). Memory is the whole
 * process tree of the gateway (gateway + children): RSS and PSS summed from
 * /proc/<pid>/smaps_rollup (PSS divides shared pages among the processes that share them, so it
 * adds up; RSS counts shared pages once per process). Run: npm run bench -- stdio-memory [--quick]
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { closeSession, openSession, startServersChild, stopChildren, trackChild, type Session } from './fixtures/mcp-load.ts';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');
const SESSIONS = quick ? 40 : 200;
const USERS = 20;
const TINY = fileURLToPath(new URL('../test/gateway/fixtures/tiny-server.mjs', import.meta.url));

/** pid and its live descendants (Linux /proc). */
function tree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z') parents.set(Number(e), Number(ppid));
    } catch {
      // ended meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [c, p] of parents) if (p === out[i]) out.push(c);
  return out;
}

function memory(pid: number): { processes: number; rssMb: number; pssMb: number } {
  let rss = 0;
  let pss = 0;
  const pids = tree(pid);
  for (const p of pids) {
    try {
      for (const line of readFileSync(`/proc/${p}/smaps_rollup`, 'utf8').split('\n')) {
        const [k, v] = line.split(/\s+/);
        if (k === 'Rss:') rss += Number(v);
        if (k === 'Pss:') pss += Number(v);
      }
    } catch {
      // ended meanwhile
    }
  }
  return { processes: pids.length, rssMb: Math.round(rss / 1024), pssMb: Math.round(pss / 1024) };
}

async function waitForProcesses(pid: number, atMost: number): Promise<void> {
  for (let i = 0; i < 200 && tree(pid).length > atMost; i++) await new Promise((r) => setTimeout(r, 50));
}

async function startSupergateway(): Promise<{ url: string; pid: number }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, [require.resolve('supergateway/dist/index.js'), '--stdio', `${process.execPath} ${TINY}`, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(port), '--logLevel', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] });
  trackChild(child);
  const url = `http://127.0.0.1:${port}/mcp`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: 'GET' });
      return { url, pid: child.pid! };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('supergateway did not start');
}

async function scenario(name: string, pid: number, targets: { url: string; token?: string }[]): Promise<Record<string, unknown>> {
  const idle = memory(pid);
  const sessions: Session[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const t = targets[i % targets.length]!;
    const s = await openSession({ name, url: t.url, ...(t.token ? { token: t.token } : {}) }, 1);
    const res = await s.pool.request({ path: s.path, method: 'POST', headers: s.headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}' });
    const text = await res.body.text();
    if (!text.includes('hi')) throw new Error(`${name}: unexpected answer ${text.slice(0, 200)}`);
    sessions.push(s);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const open = memory(pid);
  for (const s of sessions) await closeSession(s);
  await waitForProcesses(pid, idle.processes);
  const row = { name, sessions: SESSIONS, users: targets.length, children: open.processes - 1, rssMb: open.rssMb, pssMb: open.pssMb, idleRssMb: idle.rssMb, idlePssMb: idle.pssMb };
  console.error(`  ${JSON.stringify(row)}`);
  return row;
}

try {
  const upstream = (await startServersChild(['upstream'])).info.url as string;
  const { child, info } = await startServersChild(['warden', upstream]);
  const wardenPid = child.pid!;
  const base = `${info.url}/mcp`;
  const rows = [];
  rows.push(await scenario('mcp-warden, one child per session', wardenPid, [{ url: `${base}/stdio-mem`, token: info.tokens['stdio-mem'] }]));
  rows.push(await scenario('mcp-warden, share: per-user, one user', wardenPid, [{ url: `${base}/stdio-shared`, token: info.tokens['stdio-shared'] }]));
  rows.push(await scenario(`mcp-warden, share: per-user, ${USERS} users`, wardenPid, Array.from({ length: USERS }, (_, i) => ({ url: `${base}/stdio-shared`, token: info.tokens[`stdio-shared-user${i}`] }))));
  const sg = await startSupergateway();
  rows.push(await scenario('supergateway --stateful (no auth)', sg.pid, [{ url: sg.url }]));
  console.log('| system | sessions | users | child processes | tree RSS MB | tree PSS MB | idle tree RSS MB | idle tree PSS MB |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${Object.values(r).join(' | ')} |`);
  const [perSession, oneUser] = rows as { pssMb: number; idlePssMb: number }[];
  console.log(`\nper-user, one user / per session, PSS added by the sessions: ${((oneUser!.pssMb - oneUser!.idlePssMb) / (perSession!.pssMb - perSession!.idlePssMb)).toFixed(3)}`);
} finally {
  stopChildren();
}
