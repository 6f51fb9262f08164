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

/**
 * `mcp-warden <args>` as a child process, as a user runs it: exit code (null when a signal ended
 * it), stdout and stderr. The child's environment is PATH plus `env` only, so nothing of the test
 * runner's leaks in; `stdin`, when given, is written and closed (otherwise stdin is /dev/null).
 */
export function runBin(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
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
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  });
}
