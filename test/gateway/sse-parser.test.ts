import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSseParser } from '../../src/gateway/sse.ts';

describe('the SSE parser of upstream streams', () => {
  it('HTML §9.2.6: the SSE parser joins multi-line data, ignores comments, handles CRLF and split chunks', () => {
    const events: { event: string; data: string; id?: string }[] = [];
    const feed = createSseParser((e) => events.push(e));
    feed(': comment\r\nid: 7\r\nevent: message\r\ndata: {"a":\r\n');
    feed('data: 1}\r\n\r\ndata: x\n');
    feed('\n');
    assert.deepEqual(events, [{ event: 'message', data: '{"a":\n1}', id: '7' }, { event: 'message', data: 'x', id: '7' }]);
    assert.deepEqual(JSON.parse(events[0]!.data), { a: 1 });
  });
});
