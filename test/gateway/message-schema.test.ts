import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSpecType } from '@modelcontextprotocol/server';
import { checkClientMessage } from '../../src/gateway/message-schema.ts';

// Requests and notifications near the edge of the SDK's envelope schemas: the gateway's shortcut
// for the plain message must accept exactly what the schemas accept, never more.
const variants: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { a: 1 } } },
  { jsonrpc: '2.0', id: 'x', method: 'ping' },
  { jsonrpc: '2.0', id: 0, method: '' },
  { jsonrpc: '2.0', id: -0, method: 'ping' },
  { jsonrpc: '2.0', id: 1.5, method: 'ping' },
  { jsonrpc: '2.0', id: 2 ** 53, method: 'ping' },
  { jsonrpc: '2.0', id: null, method: 'ping' },
  { jsonrpc: '2.0', id: {}, method: 'ping' },
  { jsonrpc: '2.0', id: 1, method: 7 },
  { jsonrpc: '2.0', id: 1, method: 'ping', extra: true },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: [] },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: null },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: {} },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: {} } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: null } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: [] } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { progressToken: 'p' } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { progressToken: 3 } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { progressToken: 3.5 } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { progressToken: null } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { progressToken: 'p', other: { x: 1 } } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 't' } } } },
  { jsonrpc: '2.0', id: 1, method: 'ping', params: { _meta: { 'io.modelcontextprotocol/related-task': 5 } } },
  { jsonrpc: '2.0', method: 'notifications/initialized' },
  { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: 1 } },
  { jsonrpc: '2.0', method: 'notifications/x', params: 'no' },
  { jsonrpc: '2.0', method: 'notifications/x', extra: 1 },
  JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","__proto__":{}}'),
  JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"__proto__":{"progressToken":1.5}}}}'),
];

describe('client messages: the envelope check', () => {
  it('MCP 2025-11-25 basic §Requests, §Notifications: a message is forwarded exactly when the SDK\'s JSON-RPC request or notification schema accepts it', () => {
    for (const v of variants) {
      const sdk = 'id' in (v as object) ? isSpecType.JSONRPCRequest(v) : isSpecType.JSONRPCNotification(v);
      assert.equal(checkClientMessage(v).ok, sdk, JSON.stringify(v));
    }
  });
});
