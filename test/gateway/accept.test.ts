import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accepts, isJsonContentType } from '../../src/gateway/accept.ts';

describe('Accept and Content-Type of the Streamable HTTP front', () => {
  it('RFC 9110 §12.5.1: Accept matching with parameters and wildcards', () => {
    assert.ok(accepts('application/json;q=0.9, text/event-stream', 'text/event-stream'));
    assert.ok(accepts('*/*', 'application/json'));
    assert.ok(accepts('text/*', 'text/event-stream'));
    assert.ok(accepts('Application/JSON', 'application/json'));
    assert.ok(!accepts('text/html', 'application/json'));
    assert.ok(!accepts('', 'application/json'));
    assert.ok(accepts(undefined, 'application/json'));
  });

  it('RFC 9110 §12.4.2: a media range with q=0 is "not acceptable", also when named exactly or through a wildcard', () => {
    assert.ok(!accepts('application/json;q=0, text/event-stream', 'application/json'));
    assert.ok(accepts('application/json;q=0, text/event-stream', 'text/event-stream'));
    assert.ok(!accepts('text/event-stream; q=0.0', 'text/event-stream'));
    assert.ok(!accepts('*/*;q=0', 'application/json'));
    // The more specific range decides (§12.5.1): text/* excluded, text/event-stream named.
    assert.ok(accepts('text/*;q=0, text/event-stream', 'text/event-stream'));
    assert.ok(!accepts('application/*;q=0, text/event-stream', 'application/json'));
  });

  it('RFC 9110 §8.3: the body is JSON only as application/json, with any parameters', () => {
    assert.ok(isJsonContentType('application/json'));
    assert.ok(isJsonContentType('Application/JSON; charset=utf-8'));
    assert.ok(!isJsonContentType('text/plain'));
    assert.ok(!isJsonContentType(undefined));
  });
});
