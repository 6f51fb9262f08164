#!/usr/bin/env node
// The `mcp-warden` command. The published package runs its build (dist/, compiled by
// `npm run build:dist` on prepack, plain JavaScript: no TypeScript loader at run time). A checkout,
// where src/ sits beside bin/ (the package ships no src/), runs the TypeScript sources through
// tsx instead, so `npm start` and the tests need no build step and never run a stale one; a
// checkout installed without dev dependencies (no tsx) runs its build if it has one.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

async function typescriptLoader() {
  try {
    return await import('tsx/esm/api');
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

const tsx = existsSync(source) ? await typescriptLoader() : undefined;
let main;
if (tsx) {
  tsx.register();
  ({ main } = await import(source.href));
} else if (existsSync(built)) {
  ({ main } = await import(built.href));
} else {
  console.error('mcp-warden: this checkout has neither tsx to run its sources (a dev dependency: run `npm install`) nor a build (run `npm run build`)');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
