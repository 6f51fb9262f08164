#!/usr/bin/env node
// The `mcp-warden` command. The published package runs its build (dist/, compiled by
// `npm run build` on prepack, plain JavaScript: no TypeScript loader at run time). A checkout,
// where src/ sits beside bin/ (the package ships no src/), runs the TypeScript sources through
// tsx instead, so `npm start` and the tests need no build step and never run a stale one.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
