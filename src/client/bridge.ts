/**
 * `mcp-warden connect`: a stdio ↔ Streamable HTTP bridge for local MCP hosts that speak only stdio.
 * Messages are relayed as they are (the host negotiates the protocol itself); the bridge adds the
 * bearer token to every HTTP request (through `WardenClient.fetch`: refresh, 401, step-up), and
 * recovers from a lost connection or an expired session:
 *  - a network failure is retried with backoff before the host gets a JSON-RPC error;
 *  - 404 on a request that carried a session id means the session ended (MCP Streamable HTTP
 *    §Session Management): the bridge replays the host's initialize and initialized on a new
 *    session, then resends the request.
 * On stdin's end the session is closed with DELETE (transport spec: clients SHOULD).
 */
import {
  ReadBuffer,
  SdkHttpError,
  serializeMessage,
  StreamableHTTPClientTransport,
  type JSONRPCMessage,
} from '@modelcontextprotocol/client';
import { isClientError } from './errors.ts';
import { explainFailure, summarize } from './failure.ts';
import type { WardenClient } from './session.ts';

export interface BridgeOptions {
  warden: WardenClient;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  onNotice?: (message: string) => void;
  /** Attempts per message on network failure (default 5), with doubling delay from `retryDelayMs` (default 250). */
  maxRetries?: number;
  retryDelayMs?: number;
}

type Request = Extract<JSONRPCMessage, { method: string; id: string | number }>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isRequest(message: JSONRPCMessage): message is Request {
  return 'method' in message && 'id' in message && message.id !== undefined;
}

function isNetworkError(err: unknown): boolean {
  if (isClientError(err, 'unreachable')) return true;
  const text = `${(err as Error)?.message ?? ''} ${String((err as { cause?: unknown })?.cause ?? '')}`;
  return /fetch failed|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|UND_ERR/i.test(text);
}

/** Runs until stdin ends; resolves with the exit code. */
export async function runStdioBridge(options: BridgeOptions): Promise<number> {
  const { warden, stdin, stdout } = options;
  const notice = options.onNotice ?? (() => undefined);
  const maxRetries = options.maxRetries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 250;

  let initialize: Request | undefined;
  let initialized: JSONRPCMessage | undefined;
  let protocolVersion: string | undefined;
  /** Ids of internal requests (a replayed initialize) whose responses the host must not see. */
  const swallowed = new Map<string | number, (message: JSONRPCMessage) => void>();
  let transport = createTransport();
  let closing = false;
  let announced = false;

  function write(message: JSONRPCMessage): void {
    stdout.write(serializeMessage(message));
  }

  function createTransport(): StreamableHTTPClientTransport {
    const t = new StreamableHTTPClientTransport(new URL(warden.serverUrl), {
      fetch: warden.fetch,
      ...(protocolVersion && { protocolVersion }),
      reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 10_000, reconnectionDelayGrowFactor: 2, maxRetries: 20 },
    });
    t.onmessage = (message) => {
      if ('id' in message && message.id !== undefined && !('method' in message)) {
        const internal = swallowed.get(message.id);
        if (internal) {
          swallowed.delete(message.id);
          internal(message);
          return;
        }
        if (initialize && message.id === initialize.id && 'result' in message) {
          const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
          if (typeof version === 'string') {
            protocolVersion = version;
            t.setProtocolVersion(version);
          }
          // One line for the person watching the host's log: the handshake went through.
          if (!announced) notice(`connected to ${warden.serverUrl}${typeof version === 'string' ? ` (MCP ${version})` : ''}`);
          announced = true;
        }
      }
      write(message);
    };
    t.onerror = (err) => {
      if (!closing) notice(`connection: ${summarize(err.message)}`);
    };
    return t;
  }

  /** A new session: replay the host's handshake, keep its responses from the host. */
  async function reestablish(): Promise<void> {
    await transport.close().catch(() => undefined);
    transport = createTransport();
    await transport.start();
    if (!initialize) return;
    const id = `mcp-warden-reinit-${Date.now()}`;
    const answered = new Promise<JSONRPCMessage>((resolve) => swallowed.set(id, resolve));
    await transport.send({ ...initialize, id } as JSONRPCMessage);
    const response = await answered;
    const version = 'result' in response ? (response.result as { protocolVersion?: unknown }).protocolVersion : undefined;
    if (typeof version === 'string') transport.setProtocolVersion(version);
    if (initialized) await transport.send(initialized);
    notice('session re-established');
  }

  /** Set when the server forgot our session; the next send first replays the handshake (once for all callers). */
  let needsReinit = false;
  let reinitializing: Promise<void> | undefined;

  async function ensureSession(message: JSONRPCMessage): Promise<void> {
    if (!needsReinit || message === initialize) return;
    reinitializing ??= reestablish().then(
      () => {
        needsReinit = false;
        reinitializing = undefined;
      },
      (err: unknown) => {
        reinitializing = undefined;
        throw err;
      },
    );
    await reinitializing;
  }

  async function forward(message: JSONRPCMessage): Promise<void> {
    if (isRequest(message) && message.method === 'initialize') initialize = message;
    if ('method' in message && message.method === 'notifications/initialized') initialized = message;
    let delay = retryDelayMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await ensureSession(message);
        await transport.send(message);
        return;
      } catch (err) {
        const sessionGone = err instanceof SdkHttpError && err.status === 404 && initialize !== undefined;
        if (attempt < maxRetries && (sessionGone || isNetworkError(err))) {
          if (sessionGone) needsReinit = true;
          notice(sessionGone ? 'session expired; reconnecting' : `${summarize((err as Error).message)}; retrying`);
          await sleep(delay);
          delay = Math.min(delay * 2, 5_000);
          continue;
        }
        // The host shows this to a person: the URL, the cause and the next step, no response body.
        const explained = explainFailure(err, warden.serverUrl);
        const text = explained instanceof Error ? explained.message : String(explained);
        if (isRequest(message)) {
          write({ jsonrpc: '2.0', id: message.id, error: { code: -32000, message: `mcp-warden: ${text}` } });
        } else {
          notice(`could not deliver ${'method' in message ? message.method : 'a response'}: ${text}`);
        }
        return;
      }
    }
  }

  await transport.start();
  const buffer = new ReadBuffer();
  let queue = Promise.resolve();
  const inflight = new Set<Promise<void>>();
  const done = new Promise<void>((resolve) => {
    stdin.on('data', (chunk: Buffer) => {
      buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = buffer.readMessage();
        } catch (err) {
          notice(`ignored a line that is not JSON-RPC: ${(err as Error).message}`);
          continue;
        }
        if (!message) break;
        const m = message;
        // Requests may run concurrently (a slow tool call must not block a ping), but a
        // request is sent only after the messages before it were handed to the transport.
        if (isRequest(m) && m.method !== 'initialize') {
          queue = queue.then(() => {
            const sent = forward(m).finally(() => inflight.delete(sent));
            inflight.add(sent);
          });
        } else {
          queue = queue.then(() => forward(m));
        }
      }
    });
    stdin.on('end', resolve);
    stdin.on('close', resolve);
  });
  await done;
  await queue;
  await Promise.all(inflight);
  closing = true;
  await transport.terminateSession().catch(() => undefined);
  await transport.close().catch(() => undefined);
  return 0;
}
