import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createClientAddressResolver, parseForwardedFor, parseNode } from '../../src/http/client-address.ts';
import { trustProxySchema } from '../../src/http/trust-proxy-schema.ts';
import { parseConfig, ConfigError } from '../../src/config/load.ts';

const req = (remoteAddress: string, headers: Record<string, string> = {}) => ({ socket: { remoteAddress }, headers } as unknown as IncomingMessage);
const resolver = (trust: unknown) => createClientAddressResolver(trust === undefined ? undefined : trustProxySchema.parse(trust));

describe('client address behind reverse proxies (src/http/client-address.ts)', () => {
  it('off by default: the socket peer, whatever X-Forwarded-For or Forwarded say', () => {
    const r = resolver(undefined);
    assert.equal(r(req('10.0.0.1', { 'x-forwarded-for': '1.2.3.4', forwarded: 'for=1.2.3.4' })), '10.0.0.1');
    assert.equal(r(req('::ffff:192.0.2.1')), '192.0.2.1', 'IPv4-mapped IPv6 peers are their IPv4 address');
  });

  it('addresses: walks right to left over trusted proxies (CIDR blocks too) and stops at the first untrusted hop', () => {
    const r = resolver({ addresses: ['10.0.0.0/8', 'fd00::/8'] });
    assert.equal(r(req('10.0.0.1', { 'x-forwarded-for': '198.51.100.9, 203.0.113.5, 10.1.2.3' })), '203.0.113.5');
    assert.equal(r(req('192.0.2.1', { 'x-forwarded-for': '203.0.113.5' })), '192.0.2.1', 'an untrusted peer\'s header is ignored');
    assert.equal(r(req('::ffff:10.9.9.9', { 'x-forwarded-for': '2001:db8::7' })), '2001:db8::7');
    assert.equal(r(req('fd00::1', { 'x-forwarded-for': '10.0.0.5, 10.0.0.6' })), '10.0.0.5', 'all trusted: the leftmost');
    assert.equal(r(req('10.0.0.1')), '10.0.0.1', 'no header: the proxy itself');
  });

  it('an entry a trusted proxy wrote that is not an address ends the walk at that proxy', () => {
    const r = resolver({ addresses: ['10.0.0.0/8'] });
    assert.equal(r(req('10.0.0.1', { 'x-forwarded-for': '203.0.113.5, unknown' })), '10.0.0.1');
    assert.equal(r(req('10.0.0.1', { 'x-forwarded-for': 'garbage, 10.0.0.2' })), '10.0.0.2');
  });

  it('hops: the nearest N hops are proxies whatever their address', () => {
    const two = resolver({ hops: 2 });
    assert.equal(two(req('192.0.2.1', { 'x-forwarded-for': '198.51.100.1, 203.0.113.5, 192.0.2.50' })), '203.0.113.5');
    assert.equal(two(req('192.0.2.1', { 'x-forwarded-for': '203.0.113.5' })), '203.0.113.5', 'a shorter chain: its leftmost');
    assert.equal(resolver({ hops: 1 })(req('192.0.2.1', { 'x-forwarded-for': '1.1.1.1, 203.0.113.5' })), '203.0.113.5');
  });

  it('RFC 7239 §4, §6: Forwarded for= with quoted IPv6 and ports, unknown and obfuscated nodes', () => {
    assert.deepEqual(parseForwardedFor('for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https, by=203.0.113.43;for=unknown'), ['192.0.2.43', '[2001:db8:cafe::17]:4711', 'unknown']);
    assert.deepEqual(parseForwardedFor('proto=http;host=x, For="_hidden"'), ['', '_hidden']);
    assert.deepEqual(parseForwardedFor('for="a\\"b,c";proto=http, for=198.51.100.3'), ['a"b,c', '198.51.100.3']);
    assert.equal(parseNode('[2001:db8:cafe::17]:4711'), '2001:db8:cafe::17');
    assert.equal(parseNode('192.0.2.43:80'), '192.0.2.43');
    assert.equal(parseNode('_hidden'), undefined);
    const r = resolver({ addresses: ['10.0.0.1'], header: 'forwarded' });
    assert.equal(r(req('10.0.0.1', { forwarded: 'for=198.51.100.1, for="[2001:db8::1]:4711"', 'x-forwarded-for': '9.9.9.9' })), '2001:db8::1', 'the configured header only');
  });

  it('configuration: trustProxy names addresses or hops, not both, and each entry is an IP or CIDR', () => {
    const cfg = (trustProxy: unknown) => () => parseConfig({ publicUrl: 'https://mcp.example.com', trustProxy, servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }] });
    assert.doesNotThrow(cfg({ addresses: ['10.0.0.0/8', '::1'] }));
    assert.doesNotThrow(cfg({ hops: 1, header: 'forwarded' }));
    assert.throws(cfg({ addresses: ['10.0.0.0/33'] }), (e: unknown) => e instanceof ConfigError && /trustProxy\.addresses\.0/.test(e.message));
    assert.throws(cfg({ addresses: ['proxy.local'] }), (e: unknown) => e instanceof ConfigError && /CIDR/.test(e.message));
    assert.throws(cfg({ addresses: ['10.0.0.1'], hops: 1 }), (e: unknown) => e instanceof ConfigError && /not both/.test(e.message));
    assert.throws(cfg({}), ConfigError);
  });
});
