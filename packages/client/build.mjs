// Builds the mcp-warden-client package (run on prepack): the client sources of the repository
// (src/client/**, the client commands of src/cli/commands/, the kernel pieces they import),
// which stay where they are, bundled with esbuild into dist/:
// - dist/cli.js, the `mcp-warden-client` command, and dist/index.js, the library (WardenClient …);
//   shared code in dist/chunks/, each command loaded on demand as in `mcp-warden`.
// - Dependencies (the MCP client SDK, zod, jose) are bundled rather than installed: installed,
//   they alone weigh ~16 MB (zod ships 8 MB of sources, locales and both module formats); bundled
//   and tree-shaken the whole package is a small fraction of the 15 MB client budget
//   (docs/benchmarks.md) and loads fewer files at start; minified, it also holds less memory. Their licences go to dist/THIRD-PARTY-NOTICES.md.
// - dist/types/: declarations of the library (tsc), for TypeScript users.
// `node build.mjs [OUTDIR] [--meta FILE] [--no-types]`: --no-types skips the declarations; --meta writes esbuild's record of every module bundled,
// which test/package/client-package.test.ts reads to check that none of them is a server module.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const args = process.argv.slice(2);
const metaAt = args.indexOf('--meta');
const metaFile = metaAt >= 0 ? args.splice(metaAt, 2)[1] : undefined;
const noTypes = args.includes('--no-types');
const outdir = args.filter((a) => a !== '--no-types')[0] ?? join(here, 'dist');

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: join(here, 'src/cli.ts'), index: join(root, 'src/client/index.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  legalComments: 'none',
  // Minified: idle `connect` holds ~9 MB less (docs/benchmarks.md, Client footprint). Names kept
  // (classes and functions in stack traces, `.name` checks); linked source maps map the rest
  // (`node --enable-source-maps`).
  minify: true,
  keepNames: true,
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies inside an ES module bundle call require() for Node's built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
if (metaFile) writeFileSync(metaFile, JSON.stringify(result.metafile));
const cli = join(outdir, 'cli.js');
writeFileSync(cli, `#!/usr/bin/env node\n${readFileSync(cli, 'utf8')}`, { mode: 0o755 });

// The licences of every package bundled (MIT/ISC/Apache-2.0 ask for their notice to travel with the code).
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m) continue;
  const dir = join(root, m[1]);
  if (packages.has(dir)) continue;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenceFile = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license', 'LICENCE'].map((f) => join(dir, f)).find((f) => existsSync(f));
  packages.set(dir, { name: manifest.name, version: manifest.version, license: manifest.license, text: licenceFile ? readFileSync(licenceFile, 'utf8').trim() : undefined });
}
const notices = [...packages.values()]
  .sort((a, b) => a.name.localeCompare(b.name))
  .map((p) => `## ${p.name} ${p.version} (${p.license})\n\n${p.text ?? `Licensed under ${p.license}; see https://www.npmjs.com/package/${p.name}`}\n`);
writeFileSync(join(outdir, 'THIRD-PARTY-NOTICES.md'), `# Third-party notices\n\nmcp-warden-client bundles these packages (dist/).\n\n${notices.join('\n')}`);

// Declarations of the library entry point.
if (!noTypes) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(here, 'tsconfig.json'), '--outDir', join(outdir, 'types')], { stdio: 'inherit' });
