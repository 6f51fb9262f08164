import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.ts';

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
