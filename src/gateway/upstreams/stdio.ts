/**
 * stdio upstream: one child process per MCP session, newline-delimited JSON-RPC on
 * stdin/stdout (MCP 2025-11-25 basic/transports §stdio). The child gets only the configured
 * environment plus a few basics and the caller's downstream credentials: never the gateway's env.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from '../../log.ts';
import type { ServerConfig, StdioUpstream } from '../../config/schema.ts';
import type { DownstreamCredentials } from '../../downstream/types.ts';
import type { Caller } from '../../kernel/caller.ts';
import { rememberRaw, serializeLine } from '../jsonrpc.ts';
import { UpstreamError, type Upstream, type UpstreamConnection, type UpstreamConnectContext } from './types.ts';
import { readStdioLines } from './stdio-lines.ts';

/** Variables a program needs to start at all; passed through from the gateway's environment. */
const BASIC_ENV = ['PATH', 'HOME', 'LANG', 'SystemRoot', 'TMPDIR'] as const;
/** Grace period between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

export interface StdioUpstreamOptions {
  server: ServerConfig;
  stdio: StdioUpstream;
  logger: Logger;
  downstream: DownstreamCredentials;
  /** The gateway's environment, read only for BASIC_ENV. */
  env: NodeJS.ProcessEnv;
}

/** The environment of a child: basics, then the configured env, then downstream credentials. */
export async function childEnvironment(options: StdioUpstreamOptions, caller: Caller): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const k of BASIC_ENV) {
    const v = options.env[k];
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, options.stdio.env, await options.downstream.envFor(caller, options.server));
  return env;
}

export function createStdioUpstream(options: StdioUpstreamOptions): Upstream {
  const live = new Set<UpstreamConnection>();
  let closed = false;
  return {
    async connect(ctx: UpstreamConnectContext): Promise<UpstreamConnection> {
      const log = options.logger.child({ server: options.server.name, sessionId: ctx.sessionId });
      const env = await childEnvironment(options, ctx.caller);
      // Closed while the environment was made (a token exchange takes a while): no child after close.
      if (closed) throw new UpstreamError('the gateway is shutting down');
      const child: ChildProcessWithoutNullStreams = spawn(options.stdio.command, options.stdio.args, {
        env,
        cwd: options.stdio.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      let exited = false;
      let closing = false;
      let reported = false;
      const report = (reason: string) => {
        if (reported) return;
        reported = true;
        live.delete(connection);
        ctx.events.closed(reason);
      };
      const exitedPromise = new Promise<void>((resolve) => {
        child.once('exit', (code, signal) => {
          exited = true;
          if (!closing) log.warn({ code, signal }, 'stdio upstream exited');
          report(closing ? 'closed' : `upstream process exited (${signal ?? `code ${code}`})`);
          resolve();
        });
        child.once('error', (err) => {
          log.error({ err: err.message }, 'stdio upstream failed to start');
          exited = true;
          report('upstream process failed to start');
          resolve();
        });
      });
      child.stdin.on('error', () => {});
      readStdioLines(child, log, (message, line) => {
        rememberRaw(message, line);
        ctx.events.message(message);
      });

      const connection: UpstreamConnection = {
        async send(messages) {
          if (exited || closing) throw new UpstreamError('the upstream process is not running');
          // Each message is its own line: stdio servers read one message per line, not batches.
          for (const m of messages) child.stdin.write(`${serializeLine(m)}\n`);
        },
        openServerStream() {},
        async close() {
          if (exited) return;
          closing = true;
          child.stdin.end();
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
          timer.unref();
          await exitedPromise;
          clearTimeout(timer);
        },
      };
      live.add(connection);
      return connection;
    },
    async close() {
      closed = true;
      await Promise.all([...live].map((c) => c.close()));
    },
  };
}
