import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { lookup as dnsLookup } from 'node:dns';
import { request } from 'undici';
import { isSpecialUseAddress } from '../../src/http/special-use-address.ts';
import { createGuardedDispatcher, OutboundAddressRefused } from '../../src/http/guarded-dispatcher.ts';
import { parseConfig } from '../../src/config/load.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';

describe('RFC 6890 special-use addresses', () => {
  const refused = [
    '127.0.0.1', '127.255.255.254', '10.0.3.7', '172.16.0.1', '172.31.255.255', '192.168.1.1', // loopback, RFC 1918
    '169.254.169.254', '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3', '255.255.255.255', '224.0.0.1', // link-local, CGNAT, this network, broadcast, multicast
    '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'fe80::1%eth0', 'ff02::1', // IPv6 loopback, unspecified, unique-local, link-local, multicast
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', // IPv4-mapped
    '::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::808:808', '2002:7f00:1::1', // IPv4-compatible, NAT64, 6to4
    '[::1]', 'localhost', 'not an address', // bracketed literal; anything that is not an IP address
  ];
  const allowed = ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '2606:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8'];
  for (const address of refused) it(`refuses ${address}`, () => assert.equal(isSpecialUseAddress(address), true));
  for (const address of allowed) it(`allows the public address ${address}`, () => assert.equal(isSpecialUseAddress(address), false));
});

describe('guarded dispatcher: the address check happens before connecting', () => {
  let listener: Server;
  let port: number;
  let connections = 0;
  before(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '::', r));
    port = (listener.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((r) => listener.close(() => r()));
  });

  /** A resolver that answers every name with `addresses` (a DNS record the attacker controls). */
  const resolveTo = (addresses: Array<{ address: string; family: 4 | 6 }>) =>
    ((_host: string, _options: unknown, callback: (err: null, addresses: Array<{ address: string; family: number }>) => void) => {
      setImmediate(() => callback(null, addresses));
    }) as unknown as typeof dnsLookup;

  const attempt = async (url: string, resolve?: typeof dnsLookup): Promise<unknown> => {
    const dispatcher = createGuardedDispatcher(resolve ? { resolve } : {});
    return send(dispatcher, url);
  };
  const send = async (dispatcher: ReturnType<typeof createGuardedDispatcher>, url: string): Promise<unknown> => {
    try {
      await request(url, { dispatcher, maxRedirections: 0 } as Parameters<typeof request>[1]);
      return undefined;
    } catch (err) {
      return err;
    } finally {
      await dispatcher.close();
    }
  };

  it('IP literals in every URL spelling (decimal, hex, short, mapped, bracketed) are refused without a connection', async () => {
    for (const host of ['127.0.0.1', '2130706433', '0x7f.1', '127.1', '0.0.0.0', '[::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      const err = await attempt(`http://${host}:${port}/`);
      assert.ok(err instanceof OutboundAddressRefused || (err as { cause?: unknown }).cause instanceof OutboundAddressRefused, `${host}: ${String(err)}`);
    }
    assert.equal(connections, 0);
  });

  it('a name that resolves to loopback (with or without a trailing dot) is refused without a connection', async () => {
    const err = await attempt(`http://localhost:${port}/`);
    assert.ok(err instanceof OutboundAddressRefused, `localhost: ${String(err)}`);
    const dotted = await attempt(`http://metadata.internal.:${port}/`, resolveTo([{ address: '127.0.0.1', family: 4 }]));
    assert.ok(dotted instanceof OutboundAddressRefused, `metadata.internal.: ${String(dotted)}`);
    assert.equal(connections, 0);
  });

  it('a name whose DNS answer mixes a public and a private address is refused as a whole (no racing to the private one)', async () => {
    const err = await attempt(`http://docs.example:${port}/`, resolveTo([{ address: '93.184.215.14', family: 4 }, { address: '127.0.0.1', family: 4 }]));
    assert.ok(err instanceof OutboundAddressRefused, String(err));
    assert.equal((err as OutboundAddressRefused).address, '127.0.0.1');
    const mapped = await attempt(`http://docs.example:${port}/`, resolveTo([{ address: '::ffff:127.0.0.1', family: 6 }]));
    assert.ok(mapped instanceof OutboundAddressRefused, String(mapped));
    assert.equal(connections, 0);
  });

  it('a name whose every address passes the check is connected to exactly the resolved address (the checked one, not a second lookup)', async () => {
    // Loopback stands in for a public address here (this test has no internet): only 127.0.0.2 is refused.
    const http = (await import('node:http')).createServer((_req, res) => res.end('document'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const httpPort = (http.address() as AddressInfo).port;
    const names: string[] = [];
    const resolve = ((host: string, _options: unknown, callback: (err: null, addresses: Array<{ address: string; family: number }>) => void) => {
      names.push(host);
      setImmediate(() => callback(null, [{ address: '127.0.0.1', family: 4 }]));
    }) as unknown as typeof dnsLookup;
    const dispatcher = createGuardedDispatcher({ resolve, isRefused: (a) => a === '127.0.0.2' });
    try {
      const res = await request(`http://docs.example:${httpPort}/client.json`, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'document');
      assert.deepEqual(names, ['docs.example'], 'resolved once, by the guard');
      const literal = await send(createGuardedDispatcher({ isRefused: (a) => a === '127.0.0.2' }), `http://127.0.0.2:${httpPort}/`);
      assert.ok(literal instanceof OutboundAddressRefused || (literal as { cause?: unknown }).cause instanceof OutboundAddressRefused, String(literal));
    } finally {
      await dispatcher.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  it('the refusal message names the host for the log; no connection was attempted to learn it', async () => {
    const err = await attempt(`http://169.254.169.254:${port}/latest/meta-data`);
    assert.ok(err instanceof OutboundAddressRefused);
    assert.equal((err as OutboundAddressRefused).code, 'ERR_OUTBOUND_ADDRESS_REFUSED');
    assert.equal(connections, 0);
  });
});

describe('clientIdMetadataDocuments.allowedOrigins (CIMD §6: an explicit list replaces allowHttpLocalhost)', () => {
  const base = { publicUrl: 'http://localhost:8080', storage: { sqlite: { path: 'warden.db' } }, servers: [{ name: 'a', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } } }] };
  const cimdOf = (c: Record<string, unknown>) =>
    (parseConfig({ ...base, authorizationServer: { embedded: { clientIdMetadataDocuments: c } } }).authorizationServer as { embedded: { clientIdMetadataDocuments: unknown } }).embedded.clientIdMetadataDocuments;

  it('defaults to no origin: nothing but https documents on public addresses', () => {
    assert.deepEqual(cimdOf({}), { enabled: true, allowedOrigins: [], allowPrivateAddresses: false });
  });

  it('takes origins exactly as URL.origin spells them, and names the key when an entry is a URL with a path', () => {
    assert.deepEqual((cimdOf({ allowedOrigins: ['http://localhost:3000'] }) as { allowedOrigins: string[] }).allowedOrigins, ['http://localhost:3000']);
    for (const bad of ['http://localhost:3000/', 'http://localhost:3000/client.json', 'ftp://files.example', 'localhost:3000']) {
      assert.throws(() => cimdOf({ allowedOrigins: [bad] }), /clientIdMetadataDocuments\.allowedOrigins\.0 .*must be an origin/, bad);
    }
  });

  it('the removed allowHttpLocalhost switch is refused, so no configuration silently keeps fetching any localhost URL', () => {
    assert.throws(() => cimdOf({ allowHttpLocalhost: true }));
  });

  it('the demo allows no http origin unless WARDEN_CIMD_ALLOWED_ORIGINS names it', () => {
    const cimd = (env: NodeJS.ProcessEnv) => (buildDemoConfig(env).authorizationServer as { embedded: { clientIdMetadataDocuments: { allowedOrigins: string[] } } }).embedded.clientIdMetadataDocuments;
    assert.deepEqual(cimd({}).allowedOrigins, []);
    assert.deepEqual(cimd({ WARDEN_CIMD_ALLOWED_ORIGINS: 'http://localhost:3000, http://127.0.0.1:4000' }).allowedOrigins, ['http://localhost:3000', 'http://127.0.0.1:4000']);
  });
});
