/**
 * The instance hop's proof (src/cluster/instance-hop.ts) and the session directory's edge parsing
 * (src/cluster/session-directory.ts, src/cluster/instance-url.ts): pure functions, no Redis.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signHop, verifyHop, HOP_MAX_AGE_MS, type HopRequest } from '../../src/cluster/instance-hop.ts';
import { isSessionId, newInstanceId, parseDirectoryEntry, INSTANCE_ID } from '../../src/cluster/session-directory.ts';
import { parseInstanceUrl } from '../../src/cluster/instance-url.ts';
import { newSessionId } from '../../src/gateway/session.ts';

const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';
const NOW = 1_765_000_000_000;
const request: HopRequest = { method: 'POST', target: '/mcp?x=1', sessionId: '3f0c6c8e-9d1e-4d8a-a1b2-0123456789ab', authorization: 'Bearer token-a' };

describe('instance hop (HMAC-SHA256 over the request, keyed with cluster.secret)', () => {
  it('RFC 2104: a hop signed with the deployment secret verifies and names its sender; no header is no hop', () => {
    assert.equal(verifyHop(SECRET, signHop(SECRET, 'abc123', request, NOW), request, NOW), 'abc123');
    assert.equal(verifyHop(SECRET, undefined, request, NOW), undefined);
  });

  it('a hop is bound to its method, target, session, Authorization and time: any change is refused', () => {
    const hop = signHop(SECRET, 'abc123', request, NOW);
    const changed: HopRequest[] = [
      { ...request, method: 'DELETE' },
      { ...request, target: '/mcp?x=2' },
      { ...request, sessionId: '3f0c6c8e-9d1e-4d8a-a1b2-0123456789ac' },
      { ...request, authorization: 'Bearer token-b' },
      { ...request, authorization: undefined },
    ];
    for (const r of changed) assert.throws(() => verifyHop(SECRET, hop, r, NOW), /does not verify/, JSON.stringify(r));
    assert.throws(() => verifyHop(SECRET, hop, request, NOW + HOP_MAX_AGE_MS + 1), /stale/);
    assert.throws(() => verifyHop(SECRET, hop, request, NOW - HOP_MAX_AGE_MS - 1), /stale/);
    assert.throws(() => verifyHop(SECRET, hop.replace('abc123', 'abc124'), request, NOW), /does not verify/);
  });

  it('another secret, a malformed value or two headers: refused', () => {
    assert.throws(() => verifyHop(SECRET, signHop(`${SECRET}x`, 'abc123', request, NOW), request, NOW), /does not verify/);
    for (const bad of ['', 'v1', 'v2.abc.1.x', 'v1.ABC.1.x', `v1.abc.${NOW}.`, `v1.abc.${NOW}.x.y`, 'v1.abc.12a.x']) {
      assert.throws(() => verifyHop(SECRET, bad, request, NOW), /malformed/, bad);
    }
    const hop = signHop(SECRET, 'abc123', request, NOW);
    assert.throws(() => verifyHop(SECRET, [hop, hop], request, NOW), /more than one/);
  });
});

describe('session directory entries (parsed at the edge)', () => {
  const entry = { instance: 'abc123', url: 'http://10.0.0.5:8080', binding: { subject: 'alice', clientId: 'c', audience: 'https://mcp.example.com/mcp', serverPath: '/mcp' }, kind: 'http', upstreamSessionId: 'u-1', protocolVersion: '2025-11-25', touchedAt: 1, touchedBy: 'def456' };

  it('a well-formed entry is read back as written; anything else is absent', () => {
    assert.deepEqual(parseDirectoryEntry(JSON.stringify(entry)), entry);
    const bad: unknown[] = [
      { ...entry, instance: 'A-B' },
      { ...entry, url: 'http://10.0.0.5:8080/path' },
      { ...entry, url: 'file:///etc/passwd' },
      { ...entry, kind: 'ssh' },
      { ...entry, binding: { ...entry.binding, subject: 7 } },
      { ...entry, touchedAt: 'now' },
      { ...entry, touchedBy: undefined },
      [entry],
    ];
    for (const b of bad) assert.equal(parseDirectoryEntry(JSON.stringify(b)), undefined, JSON.stringify(b));
    for (const text of [null, undefined, '', 'not json', 'null']) assert.equal(parseDirectoryEntry(text), undefined);
  });

  it('MCP transports §Session Management: only IDs this gateway issues are looked up; instance IDs fit keys and event IDs', () => {
    assert.ok(isSessionId(newSessionId()));
    for (const bad of ['', 'x', '../../etc', `${newSessionId()} `, newSessionId().toUpperCase(), '*']) assert.equal(isSessionId(bad), false, bad);
    for (let i = 0; i < 20; i++) assert.match(newInstanceId(), INSTANCE_ID);
  });
});

describe('instance URLs read from Redis (parsed at the edge, with the parser the hop uses)', () => {
  it('WHATWG URL: http(s) and a host only; anything the hop could not send to, or that carries more, is refused', () => {
    assert.equal(parseInstanceUrl('http://10.0.0.5:8080'), 'http://10.0.0.5:8080');
    assert.equal(parseInstanceUrl('https://[::1]:8443'), 'https://[::1]:8443');
    for (const bad of ['http://a b', 'http://user:pw@10.0.0.5', 'http://10.0.0.5/x', 'http://10.0.0.5?x', 'ftp://10.0.0.5', 'http://', 'http://[::1', 7, undefined]) {
      assert.equal(parseInstanceUrl(bad), undefined, String(bad));
    }
  });
});
