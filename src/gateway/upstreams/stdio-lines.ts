/**
 * What a stdio MCP server writes (MCP 2025-11-25 transports §stdio): one JSON-RPC message per line
 * on stdout, anything on stderr is logging. Shared by the per-session and the per-user upstreams.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../log.ts';
import { parseJsonRpcMessage, type JsonRpcMessage } from '../jsonrpc.ts';

/** Calls `onMessage` for each JSON-RPC line of the child's stdout (with the line's text); logs stderr. */
export function readStdioLines(child: ChildProcessWithoutNullStreams, log: Logger, onMessage: (message: JsonRpcMessage, line: string) => void): void {
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    if (!line.trim()) return;
    let message: JsonRpcMessage;
    try {
      message = parseJsonRpcMessage(JSON.parse(line));
    } catch {
      // §stdio: the server MUST NOT write anything else to stdout; say so once per line, never crash.
      log.warn({ bytes: line.length }, 'stdio upstream wrote a line that is not a JSON-RPC message; ignored');
      return;
    }
    onMessage(message, line);
  });
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    log.info({ stderr: line.slice(0, 4000) }, 'upstream stderr');
  });
}
