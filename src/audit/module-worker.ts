/**
 * A worker thread whose module is TypeScript like the rest of the tree, started the same way
 * from the build and from source:
 * - compiled (dist/, the published package): the sibling `.js` module, no loader needed;
 * - from source (a checkout: `npm start`, the tests): a thread does not inherit the TypeScript
 *   loader that bin/mcp-warden.js registers in-process, and Node 20 refuses `--import tsx` in a
 *   worker's execArgv, so the thread's first line loads the module through tsx's `tsImport`.
 * The thread gets no execArgv either way: the test runner's flags are not meant for it.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts `./<name>.ts` (from source) or `./<name>.js` (compiled), resolved against `parentUrl`,
 * the `import.meta.url` of the module asking for it.
 */
export function startModuleWorker(name: string, parentUrl: string, options: Omit<WorkerOptions, 'eval' | 'execArgv'>): Worker {
  const fromSource = parentUrl.endsWith('.ts');
  const moduleUrl = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, parentUrl);
  if (!fromSource) return new Worker(moduleUrl, { ...options, execArgv: [] });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(moduleUrl.href)}, ${JSON.stringify(moduleUrl.href)}))`;
  return new Worker(bootstrap, { ...options, eval: true, execArgv: [] });
}
