/**
 * Runs a keychain tool with a deadline. Secrets only ever travel on stdin/stdout: argv is visible
 * to every user through `ps` and /proc. A tool that hangs (a keyring waiting for an unlock prompt
 * nobody can answer on a headless box) is killed at the deadline, so detection never hangs.
 */
import { spawn } from 'node:child_process';
import { ClientError } from '../errors.ts';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  stdin?: string;
}

const MAX_OUTPUT = 64 * 1024;

export function runTool(command: string, args: readonly string[], options: ToolOptions): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(command, args, { env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(new ClientError('keychain_unavailable', `cannot run ${command}: ${(err as Error).message}`));
      return;
    }
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new ClientError('keychain_unavailable', `${command} did not answer within ${options.timeoutMs} ms (a locked keyring waiting for a prompt?)`)));
    }, options.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    child.on('error', (err) => finish(() => reject(new ClientError('keychain_unavailable', `cannot run ${command}: ${err.message}`))));
    child.on('close', (code, signal) => finish(() => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })));
    // EPIPE when the tool exits before reading stdin is reported by 'close' with its exit code.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

/** The tool's first stderr line, for an error message (never contains the secret: it went to stdin). */
export function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 300) || 'no message';
}
