#!/usr/bin/env node
// The published entry point. Sources are TypeScript run through tsx's ESM loader,
// so `npm install` then `npm start` needs no build step on a fresh machine.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
