/**
 * `npm run bench` runs every benchmark in bench/ (each a `bench/<name>.ts` script, one process
 * each so they do not disturb one another); `npm run bench -- gateway` runs those whose name
 * starts with an argument.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
// Names come first; from the first option on, everything goes to each benchmark as it is, so an
// option's value (`--rounds 5`, `--baseline ../old`) stays with its option.
const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('-'));
const filters = firstOption === -1 ? args : args.slice(0, firstOption);
const flags = firstOption === -1 ? [] : args.slice(firstOption);
// Entry points only: helpers live in bench/fixtures/ and children are named *-servers.ts.
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('-servers.ts'))
  .map((f) => f.slice(0, -3))
  .filter((name) => filters.length === 0 || filters.some((f) => name.startsWith(f)))
  .sort();

if (benches.length === 0) {
  console.error(`no benchmark matches ${filters.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of benches) {
  console.log(`\n=== bench/${name}.ts ===`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', `${dir}${name}.ts`, ...flags], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench/${name}.ts failed (${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
