/**
 * Docs that match behaviour: every fenced command line and configuration block in README.md and
 * docs/*.md is checked against the code, so a renamed flag, a removed command or a config key that
 * no longer validates fails here instead of in a reader's terminal.
 *  - `sh` blocks (and `$ `-prompted lines in plain blocks): every `mcp-warden` invocation must name
 *    a command and options it accepts (parsed by the command itself in check-only mode, so no
 *    config, store, network or server is touched); every `npm run X` must be a script.
 *  - `yaml` blocks must parse; those that are mcp-warden configuration (whole or a fragment of the
 *    top level or of one server) must validate through the real `parseConfig`.
 *  - `json` blocks must parse; MCP host configurations must launch a valid `mcp-warden connect`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.ts';
import { parseConfig, substituteEnv } from '../../src/config/load.ts';
import { configSchema, serverSchema } from '../../src/config/schema.ts';
import { ROUTES } from '../../src/authorization-server/provider.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const SCRIPTS = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);

interface Block { file: string; line: number; lang: string; body: string }

function blocksOf(file: string): Block[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const blocks: Block[] = [];
  const fence = /^```(\w*)[^\n]*\n([\s\S]*?)^```/gm;
  for (const m of text.matchAll(fence)) {
    blocks.push({ file, line: text.slice(0, m.index).split('\n').length, lang: m[1]!.toLowerCase(), body: m[2]! });
  }
  return blocks;
}

const BLOCKS = FILES.flatMap(blocksOf);

/** Shell words of one command line (quotes and backslashes as POSIX sh reads them; no expansion). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < line.length && line[j] !== '"'; j++) s += line[j] === '\\' ? line[++j] : line[j];
      word = (word ?? '') + s;
      i = j;
    } else if (c === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The command lines of a block: sh blocks line by line (joining `\` continuations), `$ ` lines elsewhere. */
function commandLines(block: Block): Array<{ line: number; text: string }> {
  const shell = ['sh', 'bash', 'shell', 'console'].includes(block.lang);
  if (!shell && block.lang !== '') return [];
  const out: Array<{ line: number; text: string }> = [];
  const lines = block.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i]!;
    const at = block.line + 1 + i;
    if (!shell) {
      // Plain blocks hold prompts ("$ mcp-warden …") and synopsis listings ("mcp-warden connect <url>   what it does").
      if (text.startsWith('$ ')) text = text.slice(2);
      // A synopsis's [optional] parts are checked as given; "mcp-warden start: …" is output, not a command.
      else if (/^(npx )?mcp-warden [\w-]+( |$)/.test(text)) text = text.split(/\s{2,}/)[0]!.replace(/[[\]]/g, '').replace('json-args', "'{}'").replaceAll('<url>', 'https://mcp.example.com/mcp').replaceAll('<tool>', 'a_tool');
      else continue;
    }
    while (text.endsWith('\\') && i + 1 < lines.length) text = text.slice(0, -1) + lines[++i]!;
    if (text.trim() && !text.trim().startsWith('#')) out.push({ line: at, text });
  }
  return out;
}

/** Every `mcp-warden …` invocation in a command line (after `npx [-y]`, `node bin/mcp-warden.js`, `$(…)`, pipes). */
function invocations(text: string): string[][] {
  const found: string[][] = [];
  // Command substitutions are checked on their own: $(mcp-warden token …).
  for (const sub of text.matchAll(/\$\(([^)]*)\)/g)) found.push(...invocations(sub[1]!));
  const outer = text.replace(/\$\([^)]*\)/g, 'SUBSTITUTED');
  for (const segment of outer.split(/\|\||&&|\||;/)) {
    const words = shellWords(segment);
    const at = words.findIndex((w) => w === 'mcp-warden' || w.endsWith('bin/mcp-warden.js'));
    if (at >= 0) found.push(words.slice(at + 1));
  }
  return found;
}

async function checkInvocation(args: string[]): Promise<{ code: number; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d) => { err += d; });
  stdout.resume();
  const code = await main(args, { stdout, stderr, env: {}, checkOnly: true });
  return { code, err };
}

describe('docs: every documented mcp-warden command line is one the CLI accepts', () => {
  const lines = BLOCKS.flatMap((b) => commandLines(b).map((l) => ({ ...l, file: b.file })));
  it('the docs have command lines to check (the extractor finds them)', () => {
    assert.ok(lines.filter((l) => invocations(l.text).length > 0).length >= 10, `found: ${lines.map((l) => l.text).join('\n')}`);
  });
  for (const { file, line, text } of lines) {
    for (const args of invocations(text)) {
      it(`${file}:${line}: mcp-warden ${args.join(' ')}`, async () => {
        const { code, err } = await checkInvocation(args);
        assert.equal(code, 0, `${file}:${line} "${text.trim()}" is not a valid invocation: ${err}`);
      });
    }
    const npmRun = /\bnpm (?:run ([\w:-]+)|(start|test)\b)/.exec(text);
    if (npmRun) {
      const script = npmRun[1] ?? npmRun[2]!;
      it(`${file}:${line}: npm ${npmRun[1] ? 'run ' : ''}${script} is a package.json script`, () => {
        assert.ok(SCRIPTS.includes(script), `${file}:${line}: no script "${script}" in package.json (${SCRIPTS.join(', ')})`);
      });
    }
  }
});

/** A minimal valid configuration that fragments are merged into. */
const BASE = {
  listen: { host: '127.0.0.1', port: 0 },
  publicUrl: 'https://mcp.example.com',
  servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: { command: 'node', args: ['server.js'] } }, scopes: ['notes:read'] }],
};
const TOP_KEYS = new Set(Object.keys(configSchema.shape));
const SERVER_KEYS = new Set(Object.keys(serverSchema.shape));

/** `${NAME}` references get a value, as a deployment would set them. */
const anyEnv = new Proxy({}, { get: (_t, name) => (typeof name === 'string' ? `doc-${name.toLowerCase()}-value-0123456789abcdef0123456789abcdef` : undefined) }) as NodeJS.ProcessEnv;

/** A documented config block as a whole Config: itself, or merged into BASE as a top-level or server fragment. */
function asConfig(document: Record<string, unknown>): unknown {
  const keys = Object.keys(document);
  if (keys.every((k) => TOP_KEYS.has(k))) return { ...BASE, ...document };
  if (keys.every((k) => SERVER_KEYS.has(k))) return { ...BASE, servers: [{ ...BASE.servers[0], ...document }] };
  return undefined;
}

describe('docs: every configuration block parses and validates through the real config loader', () => {
  for (const block of BLOCKS.filter((b) => ['yaml', 'yml'].includes(b.lang))) {
    it(`${block.file}:${block.line}: yaml parses and validates with parseConfig`, () => {
      let document: unknown;
      assert.doesNotThrow(() => {
        document = parseYaml(block.body);
      }, `${block.file}:${block.line}: the YAML does not parse`);
      assert.ok(document && typeof document === 'object' && !Array.isArray(document), `${block.file}:${block.line}: a mapping`);
      const config = asConfig(document as Record<string, unknown>);
      assert.ok(config, `${block.file}:${block.line}: keys ${Object.keys(document as object).join(', ')} are neither configuration nor server keys`);
      try {
        parseConfig(substituteEnv(config, anyEnv));
      } catch (err) {
        assert.fail(`${block.file}:${block.line}: ${(err as Error).message}`);
      }
    });
  }

  for (const block of BLOCKS.filter((b) => b.lang === 'json')) {
    it(`${block.file}:${block.line}: json parses${/"mcpServers"|"servers"\s*:\s*\{/.test(block.body) ? ' and launches a valid mcp-warden connect' : ''}`, async () => {
      let document: Record<string, unknown>;
      try {
        document = JSON.parse(block.body) as Record<string, unknown>;
      } catch (err) {
        assert.fail(`${block.file}:${block.line}: ${(err as Error).message}`);
      }
      const hosts = (document.mcpServers ?? (Array.isArray(document.servers) ? undefined : document.servers)) as Record<string, { command?: string; args?: string[] }> | undefined;
      if (hosts) {
        for (const [name, entry] of Object.entries(hosts)) {
          const args = entry.args ?? [];
          // The full package's bin or the light client's (mcp-warden-client: the same client commands).
          const at = args.findIndex((a) => a === 'mcp-warden' || a === 'mcp-warden-client');
          assert.ok(at >= 0, `${block.file}:${block.line}: ${name} does not run mcp-warden or mcp-warden-client`);
          const { code, err } = await checkInvocation(args.slice(at + 1));
          assert.equal(code, 0, `${block.file}:${block.line}: ${name}: ${err}`);
        }
      } else if (TOP_KEYS.has(Object.keys(document)[0] ?? '')) {
        parseConfig(substituteEnv(asConfig(document), anyEnv));
      }
    });
  }
});

describe('docs: endpoint paths named in the docs are the ones served', () => {
  const served = new Set<string>(Object.values(ROUTES));
  for (const file of FILES) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const path of new Set(text.match(/\/oauth\/[a-z][a-z/-]*/g) ?? [])) {
      it(`${file}: ${path} is a route of the embedded authorization server`, () => {
        assert.ok(served.has(path.replace(/\/$/, '')), `${file} names ${path}; served: ${[...served].join(', ')}`);
      });
    }
  }
});

describe('docs: library snippets import what the package exports', () => {
  const exportsMap = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
  for (const block of BLOCKS.filter((b) => ['ts', 'typescript', 'js', 'javascript'].includes(b.lang))) {
    for (const m of block.body.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(mcp-warden(?:\/[\w-]+)?)'/g)) {
      const names = m[1]!.split(',').map((n) => n.trim().split(/\s+as\s+/)[0]!).filter(Boolean);
      const subpath = m[2]!.replace(/^mcp-warden/, '.');
      it(`${block.file}:${block.line}: ${m[2]} exports ${names.join(', ')}`, async () => {
        assert.ok(subpath in exportsMap, `package.json has no export "${subpath}"`);
        // The sources behind the export (a built package maps the same subpath to dist/).
        const module = await import(join(ROOT, 'src', subpath === '.' ? 'index.ts' : `${subpath.slice(2)}/index.ts`)) as Record<string, unknown>;
        for (const name of names) assert.ok(name in module, `${m[2]} does not export ${name} (a type is imported with "import type")`);
      });
    }
  }
});
