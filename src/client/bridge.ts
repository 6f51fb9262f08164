/**
 * `mcp-warden connect`: a stdio ↔ Streamable HTTP bridge for local MCP hosts that speak only stdio.
 * Messages are relayed as they are, as the bytes of their line (the host negotiates the protocol
 * itself; the bridge reads only the envelope: id, method, and the negotiated protocolVersion). The
 * HTTP side is streamable-http.ts on node:http; tokens come from the `BridgeAuthority` (refresh,
 * 401, step-up there). The bridge recovers from a lost connection or an expired session:
 *  - a network failure is retried with backoff before the host gets a JSON-RPC error;
 *  - 404 on a request that carried a session id means the session ended (MCP Streamable HTTP
 *    §Session Management): the bridge replays the host's initialize and initialized on a new
 *    session, then resends the request.
 * On stdin's end the session is closed with DELETE (transport spec: clients SHOULD).
 */
import { HttpStatusError, isClientError } from './errors.ts';
import { StreamableHttpClient, type BridgeAuthority } from './streamable-http.ts';

export interface BridgeOptions {
  warden: BridgeAuthority;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  onNotice?: (message: string) => void;
  /** Attempts per message on network failure (default 5), with doubling delay from `retryDelayMs` (default 250). */
  maxRetries?: number;
  retryDelayMs?: number;
}

/** One line from the host: its bytes, and the envelope fields the bridge reads. */
interface Line {
  bytes: Buffer;
  id?: string | number;
  method?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON-RPC envelope of a line (JSON-RPC 2.0 §4, §5), or an error saying why it is not one. */
function parseLine(bytes: Buffer): Line {
  const message = JSON.parse(bytes.toString('utf8')) as unknown;
  if (typeof message !== 'object' || message === null || Array.isArray(message) || (message as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
    throw new Error('not a JSON-RPC 2.0 message object');
  }
  const { id, method } = message as { id?: unknown; method?: unknown };
  return {
    bytes,
    ...((typeof id === 'string' || typeof id === 'number') && { id }),
    ...(typeof method === 'string' && { method }),
  };
}

const isRequest = (line: Line) => line.method !== undefined && line.id !== undefined;

function isNetworkError(err: unknown): boolean {
  if (isClientError(err, 'unreachable')) return true;
  const text = `${(err as Error)?.message ?? ''} ${String((err as { cause?: unknown })?.cause ?? '')}`;
  return /fetch failed|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|UND_ERR/i.test(text);
}

/** The cause of a network failure in a few words, for the retry notice. */
function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  return typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (err as Error).message;
}

/**
 * The failure the host is shown, worded by failure.ts (loaded only now: it names the SDK's error
 * classes, which the full client throws, beside this transport's own).
 */
async function explain(err: unknown, serverUrl: string): Promise<string> {
  const { explainFailure } = await import('./failure.ts');
  const explained = explainFailure(err, serverUrl);
  return explained instanceof Error ? explained.message : String(explained);
}

/** Runs until stdin ends; resolves with the exit code. */
export async function runStdioBridge(options: BridgeOptions): Promise<number> {
  const { warden, stdin, stdout } = options;
  const notice = options.onNotice ?? (() => undefined);
  const maxRetries = options.maxRetries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 250;

  let initialize: Line | undefined;
  let initialized: Line | undefined;
  let announced = false;
  let closing = false;

  const write = (json: string) => stdout.write(`${json}\n`);
  const http = new StreamableHttpClient(warden, write, (message) => {
    if (!closing) notice(`connection: ${message}`);
  });

  /** The negotiated version from an initialize response (lifecycle §Version Negotiation). */
  function negotiated(json: string): string | undefined {
    try {
      const version = (JSON.parse(json) as { result?: { protocolVersion?: unknown } }).result?.protocolVersion;
      return typeof version === 'string' ? version : undefined;
    } catch {
      return undefined;
    }
  }

  /** POSTs one line; for requests, resolves when its answer was read to the end. */
  async function post(line: Line, intercept?: (json: string) => boolean): Promise<void> {
    const { answered } = await http.post(line.bytes, {
      initialize: line.method === 'initialize',
      ...(isRequest(line) && { requestId: line.id! }),
      ...(intercept && { intercept }),
    });
    await answered;
  }

  /** The host's initialize: its response sets the protocol version and says the bridge is connected. */
  function watchInitialize(json: string): boolean {
    const version = negotiated(json);
    if (version === undefined) return false;
    http.protocolVersion = version;
    // One line for the person watching the host's log: the handshake went through.
    if (!announced) notice(`connected to ${warden.serverUrl} (MCP ${version})`);
    announced = true;
    return false;
  }

  /** A new session: replay the host's handshake, keep its response from the host. */
  async function reestablish(): Promise<void> {
    http.reset();
    if (!initialize) return;
    const id = `mcp-warden-reinit-${Date.now()}`;
    const message = JSON.parse(initialize.bytes.toString('utf8')) as Record<string, unknown>;
    const replay: Line = { bytes: Buffer.from(JSON.stringify({ ...message, id })), id, method: 'initialize' };
    let version: string | undefined;
    await post(replay, (json) => {
      let response: { id?: unknown };
      try {
        response = JSON.parse(json) as { id?: unknown };
      } catch {
        return false;
      }
      if (response.id !== id) return false;
      version = negotiated(json);
      return true;
    });
    if (version !== undefined) http.protocolVersion = version;
    if (initialized) {
      await post(initialized);
      http.listen();
    }
    notice('session re-established');
  }

  /** Set when the server forgot our session; the next send first replays the handshake (once for all callers). */
  let needsReinit = false;
  let reinitializing: Promise<void> | undefined;

  async function ensureSession(line: Line): Promise<void> {
    if (!needsReinit || line === initialize) return;
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

  async function forward(line: Line): Promise<void> {
    if (isRequest(line) && line.method === 'initialize') initialize = line;
    if (line.method === 'notifications/initialized') initialized = line;
    let delay = retryDelayMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await ensureSession(line);
        await post(line, line === initialize ? watchInitialize : undefined);
        if (line === initialized) http.listen();
        return;
      } catch (err) {
        if (closing && (err as Error).name === 'AbortError') return;
        const sessionGone = err instanceof HttpStatusError && err.status === 404 && initialize !== undefined && line !== initialize;
        if (attempt < maxRetries && (sessionGone || isNetworkError(err))) {
          if (sessionGone) needsReinit = true;
          notice(sessionGone ? 'session expired; reconnecting' : `cannot reach ${warden.serverUrl} (${networkCause(err)}); retrying`);
          await sleep(delay);
          delay = Math.min(delay * 2, 5_000);
          continue;
        }
        // The host shows this to a person: the URL, the cause and the next step, no response body.
        const text = await explain(err, warden.serverUrl);
        if (isRequest(line)) {
          write(JSON.stringify({ jsonrpc: '2.0', id: line.id, error: { code: -32000, message: `mcp-warden: ${text}` } }));
        } else {
          notice(`could not deliver ${line.method ?? 'a response'}: ${text}`);
        }
        return;
      }
    }
  }

  let queue = Promise.resolve();
  const inflight = new Set<Promise<void>>();
  let pending: Buffer = Buffer.alloc(0);
  const done = new Promise<void>((resolve) => {
    stdin.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        // transports §stdio: messages are delimited by newlines and contain none.
        const end = pending.indexOf(10);
        if (end < 0) break;
        const bytes = pending.subarray(0, end > 0 && pending[end - 1] === 13 ? end - 1 : end);
        pending = pending.subarray(end + 1);
        if (bytes.length === 0) continue;
        let line: Line;
        try {
          line = parseLine(Buffer.from(bytes));
        } catch (err) {
          notice(`ignored a line that is not JSON-RPC: ${(err as Error).message}`);
          continue;
        }
        // Requests may run concurrently (a slow tool call must not block a ping), but a
        // request is sent only after the messages before it were handed to the server.
        if (isRequest(line) && line.method !== 'initialize') {
          queue = queue.then(() => {
            const sent = forward(line).finally(() => inflight.delete(sent));
            inflight.add(sent);
          });
        } else {
          queue = queue.then(() => forward(line));
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
  await http.terminate().catch(() => undefined);
  http.close();
  return 0;
}
