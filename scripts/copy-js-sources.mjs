#!/usr/bin/env node
// `npm run build:dist`, after tsc: JavaScript sources under src/ (the demo notes server is plain
// JavaScript so its children need no TypeScript loader) are copied to dist/ as they are; tsc
// compiles only TypeScript.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The output folder (default dist/), as tsc's --outDir: the compiled-package test builds elsewhere.
const out = process.argv[2] ?? join(root, 'dist');

function walk(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (/\.(mjs|js)$/.test(entry)) out.push(path);
  }
  return out;
}

const src = join(root, 'src');
for (const file of walk(src)) cpSync(file, join(out, relative(src, file)));
