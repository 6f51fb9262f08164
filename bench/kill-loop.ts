/**
 * Kill loop: is anything the warden acknowledged ever lost to a crash? A real `mcp-warden start`
 * child (gateway + embedded AS, SQLite in a temp directory, the demo notes server over stdio with
 * per-user secrets) gets a mix of operations from this process and is SIGKILLed at random
 * moments, then restarted, again and again until --seconds have passed:
 *   - register: RFC 7591 dynamic client registration of a public client;
 *   - sign-in: authorization code + PKCE (RFC 6749 §4.1, RFC 7636) with login, consent and code
 *     redemption;
 *   - refresh: a rotation of the latest acknowledged refresh token of a grant (OAuth 2.1 §4.3.1);
 *   - client-credentials: a token for the confidential client demo-agent;
 *   - secret: a per-user secret written through the account page (signed in like a browser) or
 *     `mcp-warden secrets set`.
 * Every fourth start runs with the test-only hook WARDEN_TEST_KILL_AFTER_REFRESH_COMMIT=1: the
 * child kills itself right after a rotation commits and before its answer leaves, the one moment
 * a signal from outside cannot hit reliably.
 *
 * A ledger keeps what was acknowledged (a 2xx answer received). After every ordinary restart, the
 * requests whose answers were lost are retried first (a lost rotation must be answered with the
 * successor it committed, RFC 9700 §2.2.2; the others are redone), then the ledger is checked:
 * every registered client can start an authorization, every grant's latest refresh token
 * refreshes, every consent is remembered (no consent page on the next sign-in), every user's
 * latest secret reaches the stdio server (its whoami fingerprint), client credentials tokens are
 * still accepted by the gateway, and audit events already on disk never disappear.
 *
 * Run: npm run bench -- kill-loop --seconds=180
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { demoServerCommand } from '../src/config/demo.ts';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { sqliteDriver } from '../src/storage/sqlite/driver.ts';
import { createSqliteStore } from '../src/storage/sqlite/store.ts';
import * as oauth from 'oauth4webapi';
import { authorize, Browser, discover, obtainTokens, refreshTokens } from '../test/helpers/oauth.ts';
import { NavigatingBrowser } from './fixtures/navigating-browser.ts';
import { createWardenChild } from './fixtures/warden-child.ts';

const BIN = fileURLToPath(new URL('../bin/mcp-warden.js', import.meta.url));

/** `--name value` or `--name=value` (bench/run.ts passes only arguments that start with a dash: use the second form there). */
function flag(name: string, fallback: number): number {
  const inline = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  const value = inline ? Number(inline.slice(name.length + 3)) : i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}
const SECONDS = flag('seconds', 180);
const PASSWORD = 'kill loop password';
const SECRETS_KEY = randomBytes(32).toString('base64');
const USERS = ['alice', 'bob'] as const;
type User = typeof USERS[number];
const SCOPE = 'notes:read';
const fingerprint = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);

const warden = await createWardenChild({
  dirPrefix: 'warden-kill-loop-',
  password: PASSWORD,
  clientSecret: 'kill loop client secret',
  // No grace at all: a retried rotation can only succeed through the answer stored with it.
  embedded: { refreshGraceSeconds: 0 },
  servers: [
    {
      name: 'notes', path: '/mcp', upstream: { stdio: demoServerCommand() }, scopes: ['notes:read'],
      downstream: { perUserSecret: { env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' } },
      // A policy, so every call is audited.
      policy: { mode: 'first-match', default: 'deny', rules: [{ name: 'whoami', tools: ['whoami'], scopes: ['notes:read'] }] },
    },
  ],
});
Object.assign(warden.env, { WARDEN_SECRETS_KEY: SECRETS_KEY });
const { url } = warden;
const resource = `${url}/mcp`;

interface Grant { clientId: string; user: User; latest: string; busy: boolean }
const ledger = {
  clients: [] as string[],
  grants: [] as Grant[],
  consents: [] as { clientId: string; user: User; verified: number }[],
  secrets: {} as Partial<Record<User, string>>,
  ccTokens: [] as string[],
  auditOnDisk: 0,
};
const kinds = ['register', 'sign-in', 'refresh', 'client-credentials', 'secret'] as const;
type Kind = typeof kinds[number];
const stats = {
  kills: 0, verifiedRestarts: 0,
  killsBy: {} as Record<string, number>,
  acknowledged: {} as Record<string, number>,
  verified: {} as Record<string, number>,
  lost: {} as Record<string, number>,
  retried: {} as Record<string, number>,
  retriedOk: {} as Record<string, number>,
  retriedSameSuccessor: 0,
  /** Where in the sign-in the lost answers were: the front channel (login, consent) or the code redemption. */
  lostSignInSteps: {} as Record<string, number>,
  otherErrors: {} as Record<string, number>,
  auditedCalls: 0,
};
const failures: string[] = [];
const bump = (m: Record<string, number>, k: string) => { m[k] = (m[k] ?? 0) + 1; };
const say = (line: string) => console.error(`  ${line}`);
function fail(kind: string, what: string): void {
  if (failures.length < 40) failures.push(`${kind}: ${what}`.slice(0, 400));
}

/** A request whose answer was lost to the kill, retried after the restart. */
interface Lost { kind: Kind; step?: string; retry: () => Promise<void>; refresh?: { grant: Grant; old: string; committed?: string } }
let lost: Lost[] = [];
let killed = false;
/**
 * Kills aimed at one kind of request: SIGKILL 0–7 ms after the request is sent, so it lands
 * before, during or after the server's commit; a rotation is aimed exactly with the test hook.
 */
const AIMS = ['random', 'registration', 'code redemption', 'consent', 'refresh commit', 'account secret write', 'client credentials', 'random'] as const;
type Aim = typeof AIMS[number];
let aimAt: Aim | undefined;
let aimFired = false;
let killChild: () => void = () => {};
function aimPoint(at: Aim): void {
  if (aimAt !== at || aimFired) return;
  aimFired = true;
  setTimeout(killChild, randomInt(8));
}
let childExited: Promise<void> = Promise.resolve();

/** Runs `op`; an error after the kill is a lost answer (queued for retry), before it a real error. */
async function attempt(kind: Kind, op: () => Promise<void>, onLost: () => Lost): Promise<void> {
  try {
    await op();
    bump(stats.acknowledged, kind);
  } catch (err) {
    // The connection dies with the process, a moment before its exit is reported: wait for it.
    if (!killed) await Promise.race([childExited, new Promise((r) => setTimeout(r, 2000))]);
    if (killed) lost.push(onLost());
    else {
      bump(stats.otherErrors, kind);
      fail(kind, `error while the warden was up: ${(err as Error).message}`);
    }
  }
}

/** Authorization code + PKCE in a browser the user navigates themselves; the code redeemed with oauth4webapi. */
async function signIn(clientId: string, user: User, progress: { step: string } = { step: '' }): Promise<void> {
  progress.step = 'login';
  const as = await discover(url);
  const client: oauth.Client = { client_id: clientId };
  const redirectUri = 'http://127.0.0.1/callback';
  const { callbackUrl, state, codeVerifier } = await authorize({ issuer: url, username: user, password: PASSWORD, resource, scope: SCOPE, clientId, redirectUri, browser: new NavigatingBrowser({ onConsent: () => { progress.step = 'consent'; aimPoint('consent'); } }) });
  const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
  progress.step = 'code redemption';
  const redemption = oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, codeVerifier, { additionalParameters: { resource }, [oauth.allowInsecureRequests]: true });
  aimPoint('code redemption');
  const response = await redemption;
  const t = await oauth.processAuthorizationCodeResponse(as, client, response);
  if (!t.refresh_token) throw new Error('no refresh_token from the code redemption');
  ledger.grants.push({ clientId, user, latest: t.refresh_token, busy: false });
  if (!ledger.consents.some((c) => c.clientId === clientId && c.user === user)) ledger.consents.push({ clientId, user, verified: 0 });
}

/** RFC 7591 registration of a public native client (as test/helpers/oauth.ts registerPublicClient, with the kill aimed at the POST). */
async function register(): Promise<void> {
  const as = await discover(url);
  const posted = oauth.dynamicClientRegistrationRequest(as, {
    client_name: 'kill loop client', application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
  }, { [oauth.allowInsecureRequests]: true });
  aimPoint('registration');
  ledger.clients.push((await oauth.processDynamicClientRegistrationResponse(await posted)).client_id);
}

async function rotate(grant: Grant, token: string): Promise<string> {
  const r = await refreshTokens({ issuer: url, clientId: grant.clientId, refreshToken: token, resource });
  if (!r.refresh_token) throw new Error('no refresh_token in the rotation answer');
  return r.refresh_token;
}

async function clientCredentials(): Promise<void> {
  const as = await discover(url);
  const client: oauth.Client = { client_id: 'demo-agent' };
  const issued = oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic('kill loop client secret'), { resource, scope: SCOPE }, { [oauth.allowInsecureRequests]: true });
  aimPoint('client credentials');
  const r = await oauth.processClientCredentialsResponse(as, client, await issued);
  ledger.ccTokens.push(r.access_token);
  if (ledger.ccTokens.length > 20) ledger.ccTokens.shift();
}

/** The account page as a browser uses it: sign in (prompt=login), open the form, post the secret. */
async function secretThroughAccountPage(user: User, value: string): Promise<void> {
  const b = new Browser();
  const origin = new URL(url).origin;
  let step = await b.follow(`${url}/account`, origin);
  for (let i = 0; i < 4 && !new URL(step.url).pathname.startsWith('/account'); i++) {
    const html = await step.response.text();
    if (!html.includes('name="password"')) throw new Error(`account sign-in: unexpected page (HTTP ${step.response.status})`);
    const r = await b.submit(step.url, html, { username: user, password: PASSWORD });
    if (r.status !== 303 && r.status !== 302) throw new Error(`account sign-in answered HTTP ${r.status}`);
    step = await b.follow(new URL(r.headers.get('location')!, step.url).href, origin);
  }
  await step.response.arrayBuffer();
  const form = await b.fetch(`${url}/account/secrets/notes`);
  const html = await form.text();
  if (form.status !== 200) throw new Error(`account form answered HTTP ${form.status}`);
  const posted = b.submit(`${url}/account/secrets/notes`, html, { secret: value });
  aimPoint('account secret write');
  const r = await posted;
  await r.arrayBuffer();
  if (r.status !== 303) throw new Error(`account secret post answered HTTP ${r.status}`);
}

function secretThroughCli(user: User, value: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'secrets', 'set', '--config', warden.configFile, '--server', 'notes', '--user', user], { env: warden.env, stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`secrets set exited ${code}: ${err.trim()}`))));
    child.stdin.end(`${value}\n`);
  });
}

const secretBusy = new Set<User>();
async function writeSecret(user: User, viaCli: boolean): Promise<void> {
  const value = `${user}-${randomBytes(8).toString('hex')}`;
  secretBusy.add(user);
  const write = () => (viaCli ? secretThroughCli(user, value) : secretThroughAccountPage(user, value));
  await attempt('secret', async () => {
    await write();
    ledger.secrets[user] = value;
  }, () => ({ kind: 'secret', retry: async () => { await write(); ledger.secrets[user] = value; } }));
  secretBusy.delete(user);
}

/** One random operation of the mix. */
async function operation(): Promise<void> {
  const r = randomInt(100);
  if (r < 10 || ledger.clients.length === 0) {
    await attempt('register', register, () => ({ kind: 'register', retry: register }));
  } else if (r < 30) {
    const clientId = ledger.clients[randomInt(ledger.clients.length)]!;
    const user = USERS[randomInt(USERS.length)]!;
    // A lost code redemption cannot be redeemed again (RFC 6749 §4.1.2: a code is used once), so
    // the client signs in again from the start, as after any other lost step.
    const progress = { step: '' };
    await attempt('sign-in', () => signIn(clientId, user, progress), () => ({ kind: 'sign-in', step: progress.step, retry: () => signIn(clientId, user) }));
  } else if (r < 70) {
    const free = ledger.grants.filter((g) => !g.busy);
    if (free.length === 0) return;
    const grant = free[randomInt(free.length)]!;
    const old = grant.latest;
    grant.busy = true;
    const entry: Lost = {
      kind: 'refresh', refresh: { grant, old },
      retry: async () => {
        grant.busy = false;
        const successor = await rotate(grant, old);
        if (entry.refresh!.committed !== undefined) {
          if (successor !== entry.refresh!.committed) throw new Error('the retry got a different successor from the one committed before the kill');
          stats.retriedSameSuccessor++;
        }
        grant.latest = successor;
      },
    };
    await attempt('refresh', async () => { grant.latest = await rotate(grant, old); }, () => entry);
    // A lost rotation keeps its grant out of the mix until its retry (after an ordinary restart).
    if (!lost.includes(entry)) grant.busy = false;
  } else if (r < 85) {
    await attempt('client-credentials', clientCredentials, () => ({ kind: 'client-credentials', retry: clientCredentials }));
  } else {
    const user = USERS.find((u) => !secretBusy.has(u));
    if (user) await writeSecret(user, randomInt(2) === 0);
  }
}

function auditCount(): number {
  return auditQuery('SELECT count(*) AS n FROM audit_events');
}
/** Audit events of the verification's whoami calls: each was acknowledged at least 300 ms (three batch intervals, src/audit/batch.ts) before any kill. */
function auditedWhoami(): number {
  return auditQuery("SELECT count(*) AS n FROM audit_events WHERE method = 'tools/call' AND target = 'whoami'");
}
function auditQuery(sql: string): number {
  const Database = sqliteDriver();
  const db = new Database(warden.dbFile, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
function checkAudit(): void {
  const all = auditCount();
  if (all < ledger.auditOnDisk) fail('audit', `audit events on disk went down from ${ledger.auditOnDisk} to ${all}`);
  ledger.auditOnDisk = all;
  const whoami = auditedWhoami();
  if (whoami < stats.auditedCalls) fail('audit', `${stats.auditedCalls} audited whoami calls acknowledged, ${whoami} events on disk`);
}

/** After a kill: what each lost rotation committed, read from the database the child left. */
async function readCommittedRotations(): Promise<void> {
  const rotations = lost.filter((l) => l.refresh);
  if (!rotations.length) return;
  const db = openDatabase(warden.dbFile);
  try {
    const store = createSqliteStore(db);
    for (const l of rotations) {
      const successor = (await store.models.find('RefreshRotation', l.refresh!.old))?.successor;
      if (typeof successor === 'string') l.refresh!.committed = successor;
    }
  } finally {
    db.close();
  }
}

async function whoami(user: User): Promise<string> {
  const { access_token } = await obtainTokens({ issuer: url, username: user, password: PASSWORD, resource, scope: SCOPE, offlineAccess: false, clientId: ledger.clients[0]! });
  const client = new Client({ name: 'kill-loop', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: { token: async () => access_token } });
  await client.connect(transport);
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    stats.auditedCalls++;
    return (result.content as { text: string }[])[0]!.text;
  } finally {
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }
}

/** Checks every acknowledged item of the ledger against the restarted warden. */
async function verify(): Promise<void> {
  const as = await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json() as { authorization_endpoint: string };
  for (const clientId of ledger.clients) {
    const u = new URL(as.authorization_endpoint);
    u.search = new URLSearchParams({ client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', resource, scope: SCOPE }).toString();
    const res = await fetch(u, { redirect: 'manual' });
    await res.arrayBuffer();
    const location = res.headers.get('location') ?? '';
    if (res.status >= 300 && res.status < 400 && !/[?&]error=/.test(location) && !location.startsWith('http://127.0.0.1/callback')) bump(stats.verified, 'register');
    else fail('register', `client ${clientId.slice(0, 8)}… cannot start an authorization (HTTP ${res.status} ${location.slice(0, 120)})`);
  }
  for (const grant of ledger.grants) {
    try {
      grant.latest = await rotate(grant, grant.latest);
      bump(stats.verified, 'refresh');
    } catch (err) {
      fail('refresh', `the latest acknowledged refresh token of a grant no longer refreshes: ${(err as Error).message}`);
    }
  }
  // Consents: each one the first time after its acknowledgement, and two older ones every time.
  const fresh = ledger.consents.filter((c) => c.verified === 0);
  const old = ledger.consents.filter((c) => c.verified > 0).sort(() => Math.random() - 0.5).slice(0, 2);
  for (const c of [...fresh, ...old]) {
    try {
      const { consentShown } = await authorize({ issuer: url, username: c.user, password: PASSWORD, resource, scope: SCOPE, clientId: c.clientId, browser: new NavigatingBrowser() });
      if (consentShown) fail('sign-in', `a remembered consent was asked again (client ${c.clientId.slice(0, 8)}…, ${c.user})`);
      else { c.verified++; bump(stats.verified, 'sign-in'); }
    } catch (err) {
      fail('sign-in', `consent check: ${(err as Error).message}`);
    }
  }
  for (const user of USERS) {
    const secret = ledger.secrets[user];
    if (secret === undefined || ledger.clients.length === 0) continue;
    try {
      const text = await whoami(user);
      if (text.includes(`credential-sha256: ${fingerprint(secret)}`)) bump(stats.verified, 'secret');
      else fail('secret', `${user}'s stdio server does not see the latest acknowledged secret`);
    } catch (err) {
      fail('secret', `whoami as ${user}: ${(err as Error).message}`);
    }
  }
  for (const token of ledger.ccTokens) {
    // A token the gateway accepts gets past authentication: no session id is then a 400, never a 401.
    const res = await fetch(resource, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    await res.arrayBuffer();
    if (res.status !== 401) bump(stats.verified, 'client-credentials');
    else fail('client-credentials', 'an acknowledged client credentials token is refused after the restart');
  }
}

const endAt = Date.now() + SECONDS * 1000;

/** Retries the requests whose answers the last kill lost, as their clients would on reconnecting. */
async function retryLost(): Promise<void> {
  const retry = lost;
  lost = [];
  for (const l of retry) {
    bump(stats.retried, l.kind);
    try {
      await l.retry();
      bump(stats.retriedOk, l.kind);
      bump(stats.acknowledged, l.kind);
    } catch (err) {
      fail(l.kind, `retry after a lost answer failed: ${(err as Error).message}`);
    }
  }
}

try {
  for (let round = 0; Date.now() < endAt; round++) {
    const aim = AIMS[round % AIMS.length]!;
    const hook = aim === 'refresh commit' && ledger.grants.length > 0;
    await warden.start(hook ? { WARDEN_TEST_KILL_AFTER_REFRESH_COMMIT: '1' } : {});
    const proc = warden.proc!;
    const died = new Promise<void>((resolve) => proc.once('exit', () => { killed = true; resolve(); }));
    childExited = died;
    killed = false;
    // With the hook, the first rotation kills the child (the verification's rotations would):
    // lost answers and the ledger wait for the next ordinary start.
    if (!hook) {
      await retryLost();
      await verify();
      stats.verifiedRestarts++;
      // Audit events are written in batches every 100 ms (src/audit/batch.ts): the verification's
      // whoami events are on disk before any kill of this round can land.
      await new Promise((r) => setTimeout(r, 300));
      checkAudit();
    }
    const carried = lost.length;
    // The mix runs until the kill: at the aimed request for an aimed round (the hook's own for a
    // rotation), at a random moment otherwise; an aimed request that does not come in 20 s falls back.
    aimAt = hook || aim === 'random' ? undefined : aim;
    aimFired = false;
    killChild = () => proc.kill('SIGKILL');
    const workers = Array.from({ length: 3 }, async () => {
      while (!killed) await operation();
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), aim === 'random' ? 300 + randomInt(4000) : 20_000);
    await died;
    clearTimeout(timer);
    killed = true;
    aimAt = undefined;
    stats.kills++;
    const label = hook ? 'right after a refresh commit (test hook)' : aimFired ? `aimed at ${aim}` : 'random';
    bump(stats.killsBy, label);
    await Promise.all(workers);
    await readCommittedRotations();
    checkAudit();
    for (const l of lost.slice(carried)) {
      bump(stats.lost, l.kind);
      if (l.step) bump(stats.lostSignInSteps, l.step);
    }
    say(`kill ${stats.kills} (${label}): lost answers ${lost.length - carried}, ledger: ${ledger.clients.length} clients, ${ledger.grants.length} grants, ${ledger.consents.length} consents, audit on disk ${auditCount()}, failures ${failures.length}`);
  }
  // A last start: retry what the last kill lost and check the whole ledger once more.
  await warden.start();
  await retryLost();
  await verify();
  stats.verifiedRestarts++;
  await warden.stop('SIGTERM');
  checkAudit();
  const audit = auditCount();

  const row = (m: Record<string, number>) => kinds.map((k) => m[k] ?? 0);
  console.log(`kill loop: ${SECONDS} s, ${stats.kills} kills ${JSON.stringify(stats.killsBy)}, ${stats.verifiedRestarts} restarts verified`);
  console.log('| kind | acknowledged | verified after restart (checks) | answers lost to a kill | retried | retry succeeded |');
  console.log('|---|---|---|---|---|---|');
  for (const [i, k] of kinds.entries()) console.log(`| ${k} | ${row(stats.acknowledged)[i]} | ${row(stats.verified)[i]} | ${row(stats.lost)[i]} | ${row(stats.retried)[i]} | ${row(stats.retriedOk)[i]} |`);
  console.log(`sign-ins lost by step: ${JSON.stringify(stats.lostSignInSteps)}`);
  console.log(`lost rotations retried with the successor committed before the kill: ${stats.retriedSameSuccessor}`);
  console.log(`audit events on disk at the end: ${audit} (never decreased); audited whoami calls acknowledged: ${stats.auditedCalls}, their events on disk: ${auditedWhoami()}`);
  console.log(`errors while the warden was up: ${JSON.stringify(stats.otherErrors)}`);
  console.log(`acknowledged items lost or retries failed: ${failures.length}`);
  for (const f of failures) console.log(`  ${f}`);
  process.exitCode = failures.length === 0 ? 0 : 1;
} finally {
  await warden.dispose();
}
