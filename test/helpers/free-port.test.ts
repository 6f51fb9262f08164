/**
 * The test helper that hands out ports (test/helpers/free-port.ts): a port one test process chose
 * is not handed to another while the first runs, even when nothing listens on it for a while.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { reservePort } from './free-port.ts';

const HELPER = new URL('./free-port.ts', import.meta.url).href;

/** A test process that chooses a port with freePort, prints it, and runs until its stdin ends. */
async function holder(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    const { freePort } = await import(${JSON.stringify(HELPER)});
    console.log(await freePort());
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await Promise.race([
    once(child.stdout!, 'data').then(([data]) => String(data)),
    once(child, 'exit').then(([code]) => { throw new Error(`the holder process exited (${code}) before printing its port`); }),
  ]);
  return { child, port: Number(line.trim()) };
}

describe('freePort', () => {
  it('a port another running test process chose is not chosen again; it is free once that process ends, and one held by a process that was killed is taken over', async () => {
    const a = await holder();
    assert.ok(Number.isInteger(a.port) && a.port > 0);
    assert.equal(reservePort(a.port), false, 'held by a running process');
    a.child.stdin!.end();
    await once(a.child, 'exit');
    assert.equal(reservePort(a.port), true, 'released when the process ended');

    const b = await holder();
    assert.equal(reservePort(b.port), false);
    b.child.kill('SIGKILL');
    await once(b.child, 'exit');
    assert.equal(reservePort(b.port), true, 'a reservation left by a killed process is taken over');
  });
});
