import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';

/** The `mcp-warden` executable (package.json `bin`). */
export const BIN = fileURLToPath(new URL('../../bin/mcp-warden.js', import.meta.url));

/** `mcp-warden <args>` in this process (no child), with `stdin` piped in: exit code, stdout and stderr. */
export async function runCli(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => { out += d; });
  stderr.on('data', (d) => { err += d; });
  const code = await main(args, { stdout, stderr, env: {}, stdin: Readable.from([stdin]) } as never);
  return { code, out, err };
}

interface RunOptions { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string }

/** What a child process left: exit code (null when a signal ended it), the signal, stdout and stderr. */
export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * `mcp-warden <args>` as a child process, as a user runs it (runNode with the package's bin).
 */
export function runBin(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode([BIN, ...args], options);
}

/**
 * `node <args>` as a child process. The child's environment is PATH plus `env` only, so nothing
 * of the test runner's leaks in; `stdin`, when given, is written and closed (otherwise stdin is
 * /dev/null).
 */
export function runNode(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    // 'close', not 'exit': the child's pipes may still hold output when it has exited (node:child_process).
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  });
}
