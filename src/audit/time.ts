/**
 * The `time` of an audit event (ISO 8601, UTC, milliseconds), made once per request.
 * `Date.prototype.toISOString` costs ~1–2 µs on our machine; the text up to the seconds changes
 * once a second, so it is kept and only the milliseconds are appended. Same output as
 * `new Date(ms).toISOString()`.
 */

let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** `new Date(ms).toISOString()`, cheaper when called many times a second. */
export function auditTime(ms: number = Date.now()): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    // "YYYY-MM-DDTHH:MM:SS." (or the ±YYYYYY form): everything but "mmmZ".
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  const millis = ms - second * 1000;
  if (!Number.isInteger(millis)) return new Date(ms).toISOString();
  return `${cachedPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}
