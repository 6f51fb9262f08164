// The `mcp-warden-client` command (bundled to dist/cli.js by build.mjs).
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
