import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auditTime } from '../../src/audit/time.ts';

describe('audit: event time', () => {
  it('RFC 3339 / ISO 8601: auditTime(ms) is exactly new Date(ms).toISOString(), across second, year and sign boundaries', () => {
    const cases = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, -1, -999, -1000, -1001, 1_764_158_400_123, 253_402_300_799_999, 253_402_300_800_000, -62_198_755_200_001, 1.5];
    // Neighbouring milliseconds in the same second and the next reuse and then renew the cached prefix.
    for (let ms = 1_764_158_399_990; ms < 1_764_158_400_010; ms++) cases.push(ms);
    for (const ms of cases) assert.equal(auditTime(ms), new Date(ms).toISOString(), String(ms));
  });

  it('without an argument it is the current time', () => {
    const before = Date.now();
    const t = Date.parse(auditTime());
    assert.ok(t >= before && t <= Date.now());
  });
});
