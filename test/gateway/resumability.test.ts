import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLogger } from '../../src/log.ts';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';
import { messageOf, readEvents, type RawEvent } from './fixtures/sse-reader.ts';
import { startHttpUpstream, type HttpUpstreamFixture } from './fixtures/http-upstream.ts';
import { waitFor } from '../helpers/wait-for.ts';

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, progressToken?: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(progressToken ? { _meta: { progressToken } } : {}) },
});

const progressOf = (events: RawEvent[]) => events.map(messageOf).filter((m) => m?.method === 'notifications/progress').map((m) => m.params.progress as number);
const resultsOf = (events: RawEvent[]) => events.map(messageOf).filter((m) => m && 'result' in m);

describe('SSE resumability, redelivery and backpressure (MCP 2025-11-25 transports §Resumability and Redelivery)', () => {
  let t: TestWarden;
  let token: string;
  let url: string;
  const logs: Record<string, unknown>[] = [];
  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) logs.push(JSON.parse(l));
        done();
      },
    });
    t = await startTestWarden({
      servers: [
        { name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, sse: { retryMs: 50 } },
        { name: 'small', path: '/mcp/small', upstream: { stdio: TINY_SERVER }, sse: { replayMaxEvents: 3 } },
        { name: 'slowreader', path: '/mcp/slowreader', upstream: { stdio: TINY_SERVER }, sse: { maxUnreadBytes: 64 * 1024, replayMaxBytes: 64 * 1024 * 1024 } },
        { name: 'streamafter', path: '/mcp/streamafter', upstream: { stdio: TINY_SERVER }, sse: { streamAfterMs: 200 } },
        { name: 'older', path: '/mcp/older', upstream: { stdio: { ...TINY_SERVER, env: { TINY_PROTOCOL_VERSION: '2025-06-18' } } } },
        // Never cuts a client for not reading, so a stream can be answered while its client does not read.
        { name: 'drain', path: '/mcp/drain', upstream: { stdio: TINY_SERVER }, sse: { maxUnreadBytes: 256 * 1024 * 1024, replayMaxBytes: 256 * 1024 * 1024, replayMaxEvents: 100_000 } },
      ],
      logger: createLogger('info', sink),
    });
    url = t.endpoint;
    token = await t.issuer.mint({ aud: [url, `${url}/small`, `${url}/slowreader`, `${url}/streamafter`, `${url}/older`, `${url}/drain`] });
  });
  after(async () => t.close());

  const get = (target: string, sid: string, headers: Record<string, string> = {}) =>
    fetch(target, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sid, ...headers } });

  it('MCP 2025-11-25 §Sending Messages: a 2025-11-25 SSE response starts with a priming event (ID, empty data, retry); every event has a unique ID naming its stream', async () => {
    const sid = await openSession(url, token);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const [a, b] = await Promise.all([post(url, token, call(1, 'slow', {}, 'p1'), h), post(url, token, call(2, 'slow', {}, 'p2'), h)]);
    const [ea, eb] = await Promise.all([readEvents(a), readEvents(b)]);
    for (const { events, ended } of [ea, eb]) {
      assert.ok(ended, 'the stream ends after the response');
      assert.equal(events[0]!.data, '', 'priming event: empty data');
      assert.ok(events[0]!.id, 'priming event: an ID');
      assert.equal(events[0]!.retry, 50, 'priming event: retry from servers[].sse.retryMs');
      assert.deepEqual(progressOf(events), [1, 2, 3]);
      assert.equal(resultsOf(events).length, 1);
      const streams = new Set(events.map((e) => e.id!.split('-').slice(0, 2).join('-')));
      assert.equal(streams.size, 1, 'one stream part per stream');
    }
    const ids = [...ea.events, ...eb.events].map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'IDs unique across the streams of the session');
    assert.notEqual(ea.events[0]!.id!.split('-')[1], eb.events[0]!.id!.split('-')[1], 'each POST stream has its own stream number');
    // The GET stream primes too.
    const g = await readEvents(await get(url, sid, { 'mcp-protocol-version': '2025-11-25' }), (events) => events.length >= 1);
    assert.equal(g.events[0]!.data, '');
    assert.ok(g.events[0]!.id && !ids.includes(g.events[0]!.id));
  });

  for (const version of ['2025-06-18', '2025-03-26']) {
    it(`MCP ${version}: no priming event (an older client may not expect empty data), but events still carry IDs`, async () => {
      const sid = await openSession(url, token, version);
      const res = await post(url, token, call(1, 'slow', {}, 'p'), { 'mcp-session-id': sid, 'mcp-protocol-version': version });
      const { events } = await readEvents(res);
      assert.ok(events.length >= 4);
      for (const e of events) {
        assert.notEqual(e.data, '', 'no empty-data event');
        assert.ok(e.id, 'every event has an ID');
      }
      assert.deepEqual(progressOf(events), [1, 2, 3]);
      // No priming on the GET stream either: its first event is the first server message.
      const g = await get(url, sid, { 'mcp-protocol-version': version });
      assert.equal(g.status, 200);
      const firstEvent = readEvents(g, (events) => events.length >= 1);
      const note = await post(url, token, call(2, 'notify'), { 'mcp-session-id': sid, 'mcp-protocol-version': version, accept: 'application/json' });
      await note.json();
      const { events: onGet } = await firstEvent;
      assert.equal(messageOf(onGet[0]!).method, 'notifications/message');
      assert.ok(onGet[0]!.id);
    });
  }

  it('MCP transports §Resumability and Redelivery: Last-Event-ID of another session, of no event, or garbage → 400; the other session is not resumed', async () => {
    const a = await openSession(url, token);
    const b = await openSession(url, token);
    const { events } = await readEvents(await post(url, token, call(1, 'slow', {}, 'p'), { 'mcp-session-id': a }));
    const idOfA = events.at(-1)!.id!;
    const other = await get(url, b, { 'last-event-id': idOfA });
    assert.equal(other.status, 400);
    assert.match((await other.json()).error.message, /Last-Event-ID/);
    const [s, stream, seq] = idOfA.split('-');
    for (const bad of ['garbage', `${s}-${stream}-${Number(seq) + 1000}`, `${s}-99-1`, `${s}-${stream}`, `${s}-0${stream}-${seq}`, 'x'.repeat(200)]) {
      const res = await get(url, a, { 'last-event-id': bad });
      assert.equal(res.status, 400, `refused: ${bad}`);
      await res.text();
    }
  });

  it('transports §Sending Messages: a disconnect is not a cancellation; the rest of the stream and its response arrive once on a GET with Last-Event-ID', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'slow', { ticks: 5, intervalMs: 60 }, 'p'), { 'mcp-session-id': sid });
    const first = await readEvents(res, (events) => progressOf(events).length >= 1);
    assert.equal(first.ended, false);
    const seen = progressOf(first.events);
    const resumed = await get(url, sid, { 'last-event-id': first.events.at(-1)!.id! });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.headers.get('content-type'), 'text/event-stream');
    const rest = await readEvents(resumed);
    assert.ok(rest.ended, 'the resumed stream ends after the response');
    assert.deepEqual([...seen, ...progressOf(rest.events)], [1, 2, 3, 4, 5], 'every progress exactly once');
    assert.deepEqual(resultsOf(rest.events).map((m) => m.result.content[0].text), ['slow done']);
    assert.equal(resultsOf(rest.events)[0].id, 1);
  });

  it('MCP transports §Resumability and Redelivery: a stream answered while its client was away is replayed from the buffer (response included), then ends', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'flood', { count: 5, size: 10 }, 'p'), { 'mcp-session-id': sid });
    const priming = await readEvents(res, (events) => events.length >= 1);
    assert.equal(priming.events[0]!.data, '');
    // stdio answers in order: once this ping is answered, the flood and its result were routed.
    await messagesOf(await post(url, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid }));
    const rest = await readEvents(await get(url, sid, { 'last-event-id': priming.events[0]!.id! }));
    assert.ok(rest.ended);
    assert.deepEqual(progressOf(rest.events), [1, 2, 3, 4, 5]);
    assert.deepEqual(resultsOf(rest.events).map((m) => m.result.content[0].text), ['flooded 5']);
    // After the last event of an answered stream there is nothing more: 204 (HTML §9.2: a 204 tells SSE clients to stop reconnecting).
    const done = await get(url, sid, { 'last-event-id': rest.events.at(-1)!.id! });
    assert.equal(done.status, 204);
    assert.equal(await done.text(), '');
  });

  it('MCP transports §Listening for Messages from the Server, §Resumability: server messages sent while the GET stream was away arrive on the GET resumed with Last-Event-ID', async () => {
    const sid = await openSession(url, token);
    const g = await readEvents(await get(url, sid, { 'mcp-protocol-version': '2025-11-25' }), (events) => events.length >= 1);
    // JSON only: the unrelated notification cannot ride on this POST, so it goes to the GET stream.
    const res = await post(url, token, call(1, 'notify'), { 'mcp-session-id': sid, accept: 'application/json' });
    assert.equal((await res.json()).result.content[0].text, 'notified');
    const resumed = await readEvents(await get(url, sid, { 'last-event-id': g.events[0]!.id! }), (events) => events.length >= 1);
    assert.equal(messageOf(resumed.events[0]!).method, 'notifications/message');
    assert.equal(resumed.events[0]!.id!.split('-')[1], '0', 'stream 0 is the GET stream');
  });

  it('sse.streamAfterMs: a 2025-11-25 request still unanswered becomes an SSE stream (priming first), so a connection dropped during a long call is resumable', async () => {
    const target = `${url}/streamafter`;
    const sid = await openSession(target, token);
    const res = await post(target, token, call(1, 'slow', { ticks: 1, intervalMs: 2500 }), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const priming = await readEvents(res, (events) => events.length >= 1);
    assert.equal(priming.events[0]!.data, '');
    const rest = await readEvents(await get(target, sid, { 'last-event-id': priming.events[0]!.id! }));
    assert.ok(rest.ended);
    assert.deepEqual(rest.events.map(messageOf).map((m) => [m.id, m.result.content[0].text]), [[1, 'slow done']]);
    // A 2025-06-18 client gets plain JSON however long it waits (no priming event for it).
    const old = await openSession(target, token, '2025-06-18');
    const json = await post(target, token, call(2, 'slow', { ticks: 1, intervalMs: 600 }), { 'mcp-session-id': old, 'mcp-protocol-version': '2025-06-18' });
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal((await json.json()).result.content[0].text, 'slow done');
  });

  it('replayMaxEvents: the oldest events are evicted; a resume that would skip one gets 410, one from within the held events gets exactly them', async () => {
    const small = `${url}/small`;
    const sid = await openSession(small, token);
    const res = await post(small, token, call(1, 'flood', { count: 20, size: 10 }, 'p'), { 'mcp-session-id': sid });
    const priming = await readEvents(res, (events) => events.length >= 1);
    await messagesOf(await post(small, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid }));
    // Events after the priming one have the next seqs: 20 progress, then the response (21).
    const [s, stream, seq] = priming.events[0]!.id!.split('-').map(Number) as [number, number, number];
    const gone = await get(small, sid, { 'last-event-id': `${s}-${stream}-${seq + 17}` });
    assert.equal(gone.status, 410);
    assert.match((await gone.json()).error.message, /no longer held/);
    const held = await readEvents(await get(small, sid, { 'last-event-id': `${s}-${stream}-${seq + 18}` }));
    assert.ok(held.ended);
    assert.deepEqual(progressOf(held.events), [19, 20]);
    assert.deepEqual(resultsOf(held.events).map((m) => m.result.content[0].text), ['flooded 20']);
    assert.deepEqual(held.events.map((e) => e.id), [seq + 19, seq + 20, seq + 21].map((n) => `${s}-${stream}-${n}`));
  });

  it('backpressure: a client that never reads is cut at maxUnreadBytes while another session keeps working; it then resumes and gets every event once', async () => {
    const slow = `${url}/slowreader`;
    const [a, b] = await Promise.all([openSession(slow, token), openSession(slow, token)]);
    const COUNT = 300;
    const body = JSON.stringify(call(1, 'flood', { count: COUNT, size: 16 * 1024 }, 'p'));
    // A raw HTTP/1.0 request (no chunked framing) on a socket that is never read: the kernel's
    // buffers fill, then the gateway's. Paused, the socket keeps what arrived for later.
    const target = new URL(slow);
    const socket = connect(Number(target.port), target.hostname);
    socket.pause();
    let raw = '';
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (raw += c));
    socket.on('error', () => {});
    socket.write(`POST ${target.pathname} HTTP/1.0\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer ${token}\r\nMcp-Session-Id: ${a}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // Meanwhile another session of the same server answers at once, and so do other requests of
    // the stalled session (its stdio child's output keeps flowing to their streams).
    for (let i = 0; i < 5; i++) {
      const [m] = await messagesOf(await post(slow, token, call(10 + i, 'echo', { message: `b${i}` }), { 'mcp-session-id': b }));
      assert.equal(m.result.content[0].text, `b${i}`);
      const [own] = await messagesOf(await post(slow, token, call(20 + i, 'echo', { message: `a${i}` }), { 'mcp-session-id': a }));
      assert.equal(own.result.content[0].text, `a${i}`);
    }
    await waitFor(() => logs.some((l) => l.sessionId === a && typeof l.unread === 'number'), 'the slow client to be cut');
    const cut = logs.find((l) => l.sessionId === a && typeof l.unread === 'number')!;
    assert.ok((cut.unread as number) > 64 * 1024);
    // Now read what reached the client before the cut (the connection then ends), and resume after its last event.
    socket.resume();
    await closed;
    assert.match(raw, /^HTTP\/1\.[01] 200/);
    const sse = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    const complete = sse.slice(0, sse.lastIndexOf('\n\n') + 2);
    const received: RawEvent[] = complete.split('\n\n').filter((block) => /^id: /m.test(block)).map((block) => ({ id: /^id: (.*)$/m.exec(block)![1]!, data: /^data: ?(.*)$/m.exec(block)?.[1] ?? '' }));
    assert.ok(progressOf(received).length < COUNT, 'the first connection did not carry everything');
    const rest = await readEvents(await get(slow, a, { 'last-event-id': received.at(-1)!.id! }));
    assert.ok(rest.ended);
    const all = [...progressOf(received), ...progressOf(rest.events)];
    assert.deepEqual(all, Array.from({ length: COUNT }, (_, i) => i + 1), 'every progress event exactly once, in order');
    assert.deepEqual(resultsOf(rest.events).map((m) => m.result.content[0].text), [`flooded ${COUNT}`]);
  });

  /**
   * A raw HTTP/1.0 request on a socket that is never read (a client that does not read: the kernel's
   * buffers fill, then the gateway's), and the gateway's side of that connection.
   */
  async function unreadRequest(target: string, method: 'GET' | 'POST', headers: Record<string, string>, body = ''): Promise<{ client: Socket; server: Socket }> {
    const accepted: Socket[] = [];
    const onConnection = (s: Socket) => accepted.push(s);
    t.warden.server.on('connection', onConnection);
    const u = new URL(target);
    const client = connect(Number(u.port), u.hostname);
    client.pause();
    client.on('error', () => {});
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const lines = Object.entries({ Host: u.host, Authorization: `Bearer ${token}`, ...headers, ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}) }).map(([k, v]) => `${k}: ${v}\r\n`);
    client.write(`${method} ${u.pathname} HTTP/1.0\r\n${lines.join('')}\r\n${body}`);
    await waitFor(() => accepted.some((s) => s.remotePort === client.localPort), 'the gateway to accept the connection');
    t.warden.server.off('connection', onConnection);
    return { client, server: accepted.find((s) => s.remotePort === client.localPort)! };
  }

  for (const version of ['2025-06-18', '2025-11-25']) {
    it(`MCP transports §Listening for Messages from the Server (${version}): a GET without Last-Event-ID after the GET stream's held events were evicted stays open (from the oldest event held) and carries later server messages`, async () => {
      const small = `${url}/small`;
      const sid = await openSession(small, token, version);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': version };
      // No GET open and a JSON-only POST: the notification is held for the GET stream.
      assert.equal((await (await post(small, token, call(1, 'notify'), { ...h, accept: 'application/json' })).json()).result.content[0].text, 'notified');
      // Six events of a POST stream push it out of the buffer (replayMaxEvents: 3).
      const flood = await readEvents(await post(small, token, call(2, 'flood', { count: 5, size: 10 }, 'p'), h));
      assert.ok(flood.ended);
      assert.deepEqual(progressOf(flood.events), [1, 2, 3, 4, 5]);
      const g = await get(small, sid, h);
      assert.equal(g.status, 200);
      // The GET claims no continuity: it is not cut for the evicted event, and the next server message reaches it.
      const onGet = readEvents(g, (events) => events.some((e) => messageOf(e)?.method === 'notifications/message'));
      assert.equal((await (await post(small, token, call(3, 'notify'), { ...h, accept: 'application/json' })).json()).result.content[0].text, 'notified');
      const { events, ended } = await onGet;
      assert.equal(ended, false, 'the GET stream stayed open');
      const messages = events.filter((e) => e.data !== '');
      assert.equal(messages.length, 1, 'only the later notification (the evicted one is gone, nothing else is on the GET stream)');
      assert.equal(messageOf(messages[0]!).method, 'notifications/message');
      assert.equal(messages[0]!.id!.split('-')[1], '0', 'on the GET stream');
      if (version === '2025-11-25') assert.equal(events[0]!.data, '', 'a 2025-11-25 GET still starts with its priming event');
    });
  }

  it('MCP transports §Session Management: DELETE destroys the connection of a POST stream answered while its client was not reading', async () => {
    const drain = `${url}/drain`;
    const sid = await openSession(drain, token);
    const body = JSON.stringify(call(1, 'flood', { count: 600, size: 16 * 1024 }, 'p'));
    const { client, server } = await unreadRequest(drain, 'POST', { Accept: 'application/json, text/event-stream', 'Mcp-Session-Id': sid }, body);
    await waitFor(() => server.writableLength > 0, 'the flood to fill the connection');
    // stdio answers in order: once this ping is answered, the flood's response was routed (the stream finished).
    await messagesOf(await post(drain, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid }));
    assert.ok(server.writableLength > 0, 'the answered stream still has bytes queued for a client that does not read');
    assert.equal(server.destroyed, false);
    const del = await fetch(drain, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.equal(del.status, 204);
    await waitFor(() => server.destroyed, 'the unread connection to be destroyed with the session');
    client.destroy();
  });

  it('MCP transports §Session Management: DELETE destroys the connection of a replay of an answered stream (Last-Event-ID) that its client does not read', async () => {
    const drain = `${url}/drain`;
    const sid = await openSession(drain, token);
    const priming = await readEvents(await post(drain, token, call(1, 'flood', { count: 600, size: 16 * 1024 }, 'p'), { 'mcp-session-id': sid }), (events) => events.length >= 1);
    await messagesOf(await post(drain, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid }));
    const { client, server } = await unreadRequest(drain, 'GET', { Accept: 'text/event-stream', 'Mcp-Session-Id': sid, 'Last-Event-ID': priming.events[0]!.id! });
    await waitFor(() => server.writableLength > 0, 'the replay to fill the connection');
    const del = await fetch(drain, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.equal(del.status, 204);
    await waitFor(() => server.destroyed, 'the replay connection to be destroyed with the session');
    client.destroy();
  });

  /** A fetch that cuts the first tools/call POST stream after its second progress event (the connection is destroyed). */
  function cuttingFetch() {
    const state = { cuts: 0, toolCalls: 0, lastEventIds: [] as string[] };
    const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const res = await fetch(input, init);
      const h = new Headers(init?.headers);
      if (init?.method === 'GET' && h.get('last-event-id')) state.lastEventIds.push(h.get('last-event-id')!);
      if (init?.method !== 'POST' || typeof init.body !== 'string' || !init.body.includes('"tools/call"')) return res;
      state.toolCalls++;
      if (state.cuts > 0) return res;
      state.cuts++;
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let cutNext = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (cutNext) {
            await reader.cancel();
            controller.error(new TypeError('terminated'));
            return;
          }
          const { value, done } = await reader.read();
          if (done) return controller.close();
          controller.enqueue(value);
          text += decoder.decode(value, { stream: true });
          if ((text.match(/notifications\/progress/g) ?? []).length >= 2) cutNext = true;
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    return { state, fetchFn };
  }

  it('@modelcontextprotocol/client 2.x: a tool call whose SSE stream is cut mid-way resumes by itself (Last-Event-ID) and gets the remaining progress and the result exactly once', async () => {
    const { state, fetchFn } = cuttingFetch();
    const client = new Client({ name: 'resumer', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: { token: async () => token }, fetch: fetchFn });
    transport.onerror = () => {};
    await client.connect(transport);
    const progress: number[] = [];
    const tokens: string[] = [];
    const result = await client.callTool(
      { name: 'slow', arguments: { ticks: 6, intervalMs: 80 } },
      { onprogress: (p) => progress.push(p.progress), onresumptiontoken: (id: string) => tokens.push(id) },
    );
    assert.equal(state.cuts, 1, 'the stream was cut once');
    assert.equal(state.toolCalls, 1, 'the tool was called once');
    assert.equal(state.lastEventIds.length, 1, 'one GET with Last-Event-ID');
    assert.ok(tokens.includes(state.lastEventIds[0]!), 'it resumed from an ID the client was given');
    assert.deepEqual(progress, [1, 2, 3, 4, 5, 6], 'each progress notification exactly once');
    assert.deepEqual(result.content, [{ type: 'text', text: 'slow done' }]);
    await transport.terminateSession();
    await client.close();
  });

  it('@modelcontextprotocol/sdk 1.x on 2025-06-18 (no priming event): a cut tool-call stream resumes from the IDs of its events, every progress and the result once', async () => {
    const { state, fetchFn } = cuttingFetch();
    const client = new ClientV1({ name: 'v1-older', version: '1.0.0' }, { capabilities: {} });
    const transport = new TransportV1(new URL(`${url}/older`), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: fetchFn, reconnectionOptions: { initialReconnectionDelay: 20, maxReconnectionDelay: 20, reconnectionDelayGrowFactor: 1, maxRetries: 2 } });
    transport.onerror = () => {};
    await client.connect(transport);
    assert.equal(transport.protocolVersion, '2025-06-18');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'slow', arguments: { ticks: 6, intervalMs: 80 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    assert.equal(state.cuts, 1);
    assert.equal(state.toolCalls, 1);
    assert.equal(state.lastEventIds.length, 1, 'resumed once with Last-Event-ID');
    assert.deepEqual(progress, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(result.content, [{ type: 'text', text: 'slow done' }]);
    await transport.terminateSession();
    await client.close();
  });

  it('@modelcontextprotocol/sdk 1.x: an SSE stream ending in an error response is not polled forever; the resume after its last event gets 204', async () => {
    const resumes: number[] = [];
    const recordingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const res = await fetch(input, init);
      if (init?.method === 'GET' && new Headers(init.headers).get('last-event-id')) resumes.push(res.status);
      return res;
    };
    const client = new ClientV1({ name: 'v1', version: '1.0.0' }, { capabilities: {} });
    const transport = new TransportV1(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } }, fetch: recordingFetch, reconnectionOptions: { initialReconnectionDelay: 20, maxReconnectionDelay: 20, reconnectionDelayGrowFactor: 1, maxRetries: 2 } });
    transport.onerror = () => {};
    await client.connect(transport);
    const progress: number[] = [];
    await assert.rejects(client.callTool({ name: 'slow', arguments: { fail: true } }, undefined, { onprogress: (p) => progress.push(p.progress) }), /slow failed/);
    assert.deepEqual(progress, [1, 2, 3]);
    // 1.x counts only a result as the answer, so it resumes after the error once: that resume gets 204 and it stops.
    await waitFor(() => resumes.length >= 1, 'the 1.x client to resume once');
    assert.deepEqual(resumes, [204]);
    await transport.terminateSession();
    await client.close();
  });

  it('@modelcontextprotocol/client 2.x: with automatic reconnection off, the request resumed with its resumption token gets the remaining progress and the result exactly once, without calling the tool again', async () => {
    const { state, fetchFn } = cuttingFetch();
    const errors: string[] = [];
    const client = new Client({ name: 'resumer-token', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      authProvider: { token: async () => token },
      fetch: fetchFn,
      reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 10, maxReconnectionDelay: 10, reconnectionDelayGrowFactor: 1 },
    });
    transport.onerror = (e) => errors.push(e.message);
    await client.connect(transport);
    const progress: number[] = [];
    const tokens: string[] = [];
    const params = { name: 'slow', arguments: { ticks: 6, intervalMs: 80 } };
    const first = client.callTool(params, { onprogress: (p) => progress.push(p.progress), onresumptiontoken: (id: string) => tokens.push(id) });
    first.catch(() => {});
    await waitFor(() => errors.some((m) => /Maximum reconnection attempts/.test(m)), 'the cut stream to be given up');
    assert.equal(state.lastEventIds.length, 0, 'no automatic resume');
    // The token of the last event the client saw (the SDK's persistable resumption token).
    const resumed = await client.request({ method: 'tools/call', params }, { resumptionToken: tokens.at(-1)! });
    assert.deepEqual(resumed.content, [{ type: 'text', text: 'slow done' }]);
    assert.deepEqual(state.lastEventIds, [tokens.at(-1)]);
    assert.equal(state.toolCalls, 1, 'resuming sent no second tools/call');
    // Replayed progress carries the original progressToken: it reaches the original handler, each once.
    assert.deepEqual(progress, [1, 2, 3, 4, 5, 6]);
    await transport.terminateSession();
    await client.close();
  });
});

describe('HTTP upstream streams resumed upstream (MCP 2025-11-25 transports §Resumability and Redelivery, SSE polling)', () => {
  let upstream: HttpUpstreamFixture;
  let t: TestWarden;
  let token: string;
  before(async () => {
    upstream = await startHttpUpstream({ resumable: true });
    t = await startTestWarden({ servers: [{ name: 'remote', path: '/mcp', upstream: { http: { url: upstream.url } } }] });
    token = await t.issuer.mint({ aud: t.endpoint });
  });
  after(async () => {
    await t.close();
    await upstream.close();
  });

  it('MCP transports §Sending Messages to the Server, §Resumability: an upstream that closes a request stream early is resumed with Last-Event-ID; the client gets every progress event and the result once', async () => {
    const sid = await openSession(t.endpoint, token);
    const res = await post(t.endpoint, token, call(1, 'poll', { n: 4 }, 'p'), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    const { events, ended } = await readEvents(res);
    assert.ok(ended);
    assert.deepEqual(progressOf(events), [1, 2, 3, 4]);
    assert.deepEqual(resultsOf(events).map((m) => m.result.content[0].text), ['polled 4']);
    const resumes = upstream.requests.filter((r) => r.method === 'GET' && r.headers['last-event-id']);
    assert.ok(resumes.length >= 1, 'the gateway resumed the upstream stream with Last-Event-ID');
    assert.equal(resumes[0]!.headers.authorization, undefined, 'no token passthrough on the resume');
  });
});
