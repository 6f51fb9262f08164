/**
 * deploy/: the container recipe and the Kubernetes manifests. No image is built here (no registry
 * access), so this checks what can break silently: every manifest parses, the names and ports
 * they share agree, the ConfigMap holds a configuration mcp-warden accepts, every `${…}` in it is
 * set by the Deployment from the Secret, the probe paths are the server's health endpoints (asked
 * of a running warden, the way a kubelet asks), and the Dockerfile starts the package's own bin,
 * ships what package.json `files` ships and probes the liveness path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig, substituteEnv } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { LIVENESS_PATH, READINESS_PATH } from '../../src/http/health.ts';

const root = new URL('../../', import.meta.url).pathname;
const k8s = join(root, 'deploy/kubernetes');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[]; scripts: Record<string, string> };

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: unknown };
type Any = any;

function readManifests(): Map<string, Manifest[]> {
  const files = new Map<string, Manifest[]>();
  for (const file of readdirSync(k8s).filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = parseAllDocuments(readFileSync(join(k8s, file), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, [], `${file} parses as YAML`);
    files.set(file, docs.map((d) => d.toJS() as Manifest).filter(Boolean));
  }
  return files;
}

const manifests = readManifests();
const all = [...manifests.values()].flat();
const one = (kind: string): Any => {
  const found = all.filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0];
};
const deployment = one('Deployment');
const container = deployment.spec.template.spec.containers[0];
const configMap = one('ConfigMap');
const secret = one('Secret');
const service = one('Service');
const pdb = one('PodDisruptionBudget');

/** The Dockerfile as instructions (continuation lines joined, comments dropped), split into stages. */
function dockerfile(): Array<{ from: string; instructions: Array<{ op: string; args: string }> }> {
  const text = readFileSync(join(root, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Array<{ from: string; instructions: Array<{ op: string; args: string }> }> = [];
  for (const line of text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op === 'FROM') stages.push({ from: args, instructions: [] });
    else stages.at(-1)!.instructions.push({ op: op!, args });
  }
  return stages;
}
const stages = dockerfile();
const runtime = stages.at(-1)!;
const jsonArgs = (op: string): string[] => {
  const found = runtime.instructions.filter((i) => i.op === op);
  assert.equal(found.length, 1, `one ${op} in the runtime stage`);
  return JSON.parse(found[0]!.args) as string[];
};

/** The configuration in the ConfigMap, with `${…}` filled from the Deployment's env names. */
function configMapConfig(overrides: Record<string, string> = {}): Config {
  const [key, text] = Object.entries(configMap.data as Record<string, string>)[0]!;
  assert.equal(key, 'warden.yaml');
  const doc = parseAllDocuments(text)[0]!.toJS();
  const env: Record<string, string> = {
    WARDEN_POSTGRES_URL: 'postgres://warden:pw@db.internal:5432/warden',
    WARDEN_REDIS_URL: 'rediss://warden:pw@redis.internal:6379',
    WARDEN_CLUSTER_SECRET: 'an-hmac-key-of-at-least-32-characters-0123',
    POD_IP: '10.0.3.7',
    ...overrides,
  };
  return parseConfig(substituteEnv(doc, env));
}

describe('deploy/kubernetes', () => {
  it('every manifest parses and names its kind, apiVersion and name; kustomization applies all but the example Secret', () => {
    for (const [file, docs] of manifests) {
      assert.ok(docs.length >= 1, file);
      for (const m of docs) assert.ok(m.apiVersion && m.kind && (m.kind === 'Kustomization' || m.metadata?.name), `${file}: apiVersion, kind, metadata.name`);
    }
    const kustomization = one('Kustomization');
    const listed = new Set<string>(kustomization.resources);
    for (const file of listed) assert.ok(existsSync(join(k8s, file)), `${file} exists`);
    for (const file of manifests.keys()) {
      if (file === 'kustomization.yaml') continue;
      assert.equal(listed.has(file), file !== 'secret.example.yaml', `${file} ${file === 'secret.example.yaml' ? 'is never applied with placeholder values' : 'is applied'}`);
    }
  });

  it('a Deployment of 3 replicas; Service and PodDisruptionBudget select its pods; rolling updates keep all 3 serving', () => {
    assert.equal(deployment.spec.replicas, 3);
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(selects(deployment.spec.selector.matchLabels), 'the Deployment selects its own template');
    assert.ok(selects(service.spec.selector), 'the Service selects the pods');
    assert.ok(selects(pdb.spec.selector.matchLabels), 'the PodDisruptionBudget selects the pods');
    assert.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === 2);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
  });

  it('ports: the Service and the probes name the container port, which is listen.port and the image EXPOSE', () => {
    const [port] = container.ports as Array<{ name: string; containerPort: number }>;
    assert.equal(service.spec.ports[0].targetPort, port!.name);
    assert.equal(container.readinessProbe.httpGet.port, port!.name);
    assert.equal(container.livenessProbe.httpGet.port, port!.name);
    const config = configMapConfig();
    assert.equal(config.listen.port, port!.containerPort);
    assert.equal(config.listen.host, '0.0.0.0', 'reachable from the kubelet and the Service, not loopback only');
    assert.equal(Number(runtime.instructions.find((i) => i.op === 'EXPOSE')!.args), port!.containerPort);
  });

  it('the ConfigMap is mounted where the container reads its --config, and holds a configuration mcp-warden accepts for scale-out', () => {
    const configPath = (container.args as string[])[(container.args as string[]).indexOf('--config') + 1]!;
    const volume = (deployment.spec.template.spec.volumes as Any[]).find((v) => v.configMap?.name === configMap.metadata.name);
    assert.ok(volume, 'a volume from the ConfigMap');
    const mount = (container.volumeMounts as Any[]).find((m) => m.name === volume.name);
    assert.equal(posix.join(mount.mountPath, Object.keys(configMap.data)[0]!), configPath);
    assert.deepEqual(jsonArgs('CMD'), container.args, "the image's default command is the Deployment's");
    const config = configMapConfig();
    assert.ok(config.storage.postgres, 'PostgreSQL: instances share their durable state');
    assert.ok(config.cluster?.redis, 'Redis: revocations, limits, sessions and key notices reach every instance');
    assert.ok(config.publicUrl.startsWith('https://'));
    assert.equal(config.audit.jsonl, undefined, 'nothing written to the read-only root filesystem: audit goes to PostgreSQL');
  });

  it('every ${…} in the configuration is set by the Deployment, from the Secret the example shows', () => {
    const text = Object.values(configMap.data as Record<string, string>)[0]!;
    const referenced = new Set([...text.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
    assert.ok(referenced.size >= 2);
    const env = new Map<string, Any>((container.env as Any[]).map((e) => [e.name, e]));
    for (const name of referenced) assert.ok(env.has(name), `${name} is set in the Deployment`);
    for (const e of env.values()) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      assert.equal(ref.name, secret.metadata.name, `${e.name} comes from the Secret`);
      assert.ok(ref.key in secret.stringData, `the example Secret shows key ${ref.key}`);
    }
    for (const name of ['WARDEN_POSTGRES_URL', 'WARDEN_REDIS_URL']) assert.ok(env.get(name).valueFrom.secretKeyRef, `${name} (it carries a password) comes from the Secret`);
  });

  it('non-root, no privilege escalation, read-only root filesystem, resources requested and memory limited', () => {
    const pod = deployment.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 1000, 'the uid of the node image\'s "node" user');
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory);
  });
});

describe('deploy/Dockerfile', () => {
  it('multi-stage on node:24-slim: npm ci without install scripts or toolchain, build, npm prune --omit=dev; the runtime stage runs as a non-root user', () => {
    assert.ok(stages.length >= 2);
    assert.match(stages[0]!.from, /^node:24-slim AS build$/);
    assert.equal(runtime.from, 'node:24-slim');
    const build = stages[0]!.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    assert.match(build, /npm ci\b/);
    assert.match(build, /npm run build:dist\b/);
    assert.match(build, /npm prune --omit=dev\b/);
    // Node 24 loads better-sqlite3 13 only: the optional 12 (for Node 20) is neither built nor kept.
    assert.match(build, /npm ci\b[^&]*--omit=optional\b/);
    assert.match(build, /npm prune\b[^&]*--omit=optional\b/);
    // node:24-slim has no python3 or make: npm ci runs better-sqlite3 13's implicit node-gyp
    // rebuild despite its "gypfile": false (npm/cli#3341) unless scripts are off, and nothing the
    // runtime keeps needs one. Nor is a toolchain installed to make up for it.
    assert.match(build, /npm ci\b[^&]*--ignore-scripts\b/);
    assert.doesNotMatch(build, /apt-get|apk add|python3|g\+\+|build-essential/);
    assert.ok(build.indexOf('npm prune') > build.indexOf('build:dist'), 'pruned after the build needed the dev dependencies');
    const user = runtime.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
  });

  it('no package the image keeps needs an install script: better-sqlite3 13 loads the addon its package ships', () => {
    // The build stage installs with --ignore-scripts (above). A runtime dependency whose install
    // does real work (downloads or compiles its addon) would be broken in the image: one with an
    // install script, or one with a binding.gyp, for which npm runs `node-gyp rebuild` itself
    // (whatever its "gypfile" says, npm/cli#3341; the lockfile's hasInstallScript does not show it).
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean; hasInstallScript?: boolean; link?: boolean }> };
    const kept = Object.entries(lock.packages).filter(([path, p]) => path.startsWith('node_modules/') && !p.dev && !p.optional && !p.devOptional && !p.link).map(([path, p]) => ({ path, ...p }));
    assert.ok(kept.some((p) => p.path === 'node_modules/better-sqlite3'), 'better-sqlite3 is a runtime dependency');
    const scripted = kept.filter((p) => {
      const manifest = JSON.parse(readFileSync(join(root, p.path, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
      const { preinstall, install, postinstall } = manifest.scripts ?? {};
      return p.hasInstallScript || preinstall || install || postinstall || existsSync(join(root, p.path, 'binding.gyp'));
    }).map((p) => p.path);
    // better-sqlite3 13: a binding.gyp whose targets are empty where its package ships the addon.
    assert.deepEqual(scripted, ['node_modules/better-sqlite3']);
    assert.ok(existsSync(join(root, 'node_modules/better-sqlite3/prebuilds/linux-x64.node')) && existsSync(join(root, 'node_modules/better-sqlite3/prebuilds/linuxmusl-arm64.node')));
  });

  it("the entrypoint is package.json's bin, and the runtime stage holds every path package.json `files` ships", () => {
    const entrypoint = jsonArgs('ENTRYPOINT');
    assert.deepEqual(entrypoint, ['node', pkg.bin['mcp-warden']!.replace(/^\.\//, '')]);
    const copied = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/).at(-1)!.replace(/^\.\//, '').replace(/\/$/, ''));
    for (const path of [...pkg.files, 'package.json', 'node_modules']) assert.ok(copied.includes(path), `${path} is in the image`);
  });

  it('every file the build stage copies exists, and covers what build:dist reads', () => {
    const sources = stages[0]!.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const s of sources) assert.ok(existsSync(join(root, s)), `${s} exists in the repository`);
    for (const input of ['tsconfig.build.json', 'scripts/copy-js-sources.mjs']) {
      assert.ok(pkg.scripts['build:dist']!.includes(input), `build:dist reads ${input}`);
      assert.ok(sources.includes(input), `${input} is copied before the build`);
    }
    const extendsBase = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')).extends as string;
    assert.ok(sources.includes(extendsBase.replace(/^\.\//, '')), `${extendsBase} (extended by tsconfig.build.json) is copied`);
  });
});

describe('deploy: the probes against a running mcp-warden', () => {
  let dir: string;
  let warden: Warden;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-deploy-'));
    // The ConfigMap's configuration on this machine: a local port and SQLite instead of the cluster's services.
    const base = configMapConfig();
    warden = await startWarden((port) => parseConfig({
      ...JSON.parse(JSON.stringify({ ...base, cluster: undefined, storage: undefined, trustProxy: undefined })),
      listen: { host: '127.0.0.1', port },
      publicUrl: `http://127.0.0.1:${port}`,
      storage: { sqlite: { path: join(dir, 'w.db') } },
    }), { env: { PATH: process.env.PATH } });
  });
  after(async () => {
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GET as a kubelet does: to the pod's address, so the Host header is that address. */
  const kubeletGet = (path: string) => new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port: warden.port, path, headers: { host: `10.244.0.9:${warden.port}` }, agent: false }, (res) => { res.resume(); resolve(res.statusCode!); })
      .on('error', reject).end();
  });

  it('the readiness and liveness probe paths are the server\'s health endpoints and answer 200', async () => {
    assert.equal(container.readinessProbe.httpGet.path, READINESS_PATH);
    assert.equal(container.livenessProbe.httpGet.path, LIVENESS_PATH);
    assert.equal(await kubeletGet(container.readinessProbe.httpGet.path), 200);
    assert.equal(await kubeletGet(container.livenessProbe.httpGet.path), 200);
  });

  it("the image's HEALTHCHECK command exits 0 against a live server, and 1 when nothing listens", async () => {
    const line = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!.args;
    const command = JSON.parse(line.slice(line.indexOf('CMD') + 3).trim()) as string[];
    assert.equal(command[0], 'node');
    assert.ok(command.join(' ').includes(LIVENESS_PATH));
    const run = promisify(execFile);
    await run(process.execPath, command.slice(1), { env: { HEALTHCHECK_PORT: String(warden.port) }, timeout: 10_000 });
    await assert.rejects(run(process.execPath, command.slice(1), { env: { HEALTHCHECK_PORT: '1' }, timeout: 10_000 }), 'no server: exit code 1');
  });
});
