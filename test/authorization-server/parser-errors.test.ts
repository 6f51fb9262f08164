import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('./fixtures/json-log-warden.ts', import.meta.url));

/** Sends `head` + `body` over a raw socket; resolves with the status line (or '' if none). */
function rawRequest(port: number, head: string, body: string): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(head + body));
    socket.on('data', (d) => { received += d.toString('latin1'); socket.end(); });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received.split('\r\n')[0] ?? ''));
  });
}

/** Writes `data` on one keep-alive connection and resolves with everything received until the server closes it. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(data));
    socket.on('data', (d) => { received += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
  });
}

describe('Koa and Node parser errors go through the JSON logger', () => {
  it('RFC 9112 §7.1: a malformed chunked body leaves only JSON lines on stderr, and each request gets a 4xx', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    // 'close' comes once the process exited and its stdout and stderr were read to the end: awaited
    // below from a promise made now, so it cannot have fired before anyone listened.
    const closed = once(child, 'close');
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    let dir: string | undefined;
    try {
      while (!/READY \d+/.test(stdout)) {
        const [chunk] = await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => { throw new Error(`warden exited: ${stderr}`); })]) as [Buffer];
        void chunk;
      }
      const [, port, tmp] = /READY (\d+) (\S+)/.exec(stdout)!;
      dir = tmp;
      for (const path of ['/oauth/token', '/oauth/register', '/interaction/abc/login', '/mcp']) {
        const type = path === '/oauth/register' || path === '/mcp' ? 'application/json' : 'application/x-www-form-urlencoded';
        const status = await rawRequest(Number(port), `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n`, '5\r\nhello\r\nZZ\r\n');
        assert.match(status, /^HTTP\/1\.1 4\d\d /, `${path} is answered with a 4xx (got "${status}")`);
      }
      // On a keep-alive connection whose first response is complete, the malformed second request still gets its 400.
      const both = await rawExchange(Number(port), `GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`
        + `POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n`);
      assert.match(both, /^HTTP\/1\.1 200 /);
      assert.match(both, /HTTP\/1\.1 400 Bad Request/);
    } finally {
      child.kill('SIGTERM');
      await closed;
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'the refusals were logged');
    for (const line of lines) {
      assert.doesNotThrow(() => JSON.parse(line), `stderr holds only JSON lines; got: ${line}`);
    }
    assert.match(stderr, /Invalid character in chunk size/, 'the parser error is in the JSON log');
    assert.doesNotMatch(stderr, /"event":"server_error"/, 'a malformed request is not a server error');
  });
});
