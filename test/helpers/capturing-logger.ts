/** A JSON logger (src/log.ts) at debug level whose lines a test reads back, parsed. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.ts';

export interface CapturingLogger {
  logger: Logger;
  /** Every line logged so far, parsed, in order. */
  lines: Array<Record<string, unknown>>;
  /** The lines whose `event` is `name`. */
  events(name: string): Array<Record<string, unknown>>;
}

export function capturingLogger(): CapturingLogger {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('debug', stream), lines, events: (name) => lines.filter((l) => l.event === name) };
}
