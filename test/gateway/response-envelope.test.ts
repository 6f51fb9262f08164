import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { idKey, parseJsonRpcMessage, serialize, type JsonRpcResponse } from '../../src/gateway/jsonrpc.ts';
import { scanResponse, ScannedResponse } from '../../src/gateway/response-envelope.ts';

/** A small seeded generator (mulberry32): every run checks the same texts, and a failure names its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NUMBERS = ['0', '-0', '7', '-12', '3.25', '1e3', '1E-7', '-2.5e+10', '12345678901234567890', '0.000001', '1e400'];
const STRINGS = ['', 'hello', 'a"b', 'back\\slash', 'tab\there', 'line\nbreak', 'é ü 日本', '\u0000\u001f', '\ud83d\ude00', '\ud800', '</script>'];

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 4 || r < 0.35) {
    const k = rand();
    if (k < 0.3) return STRINGS[Math.floor(rand() * STRINGS.length)];
    if (k < 0.6) return JSON.parse(NUMBERS[Math.floor(rand() * (NUMBERS.length - 1))]!);
    return [true, false, null][Math.floor(rand() * 3)];
  }
  if (r < 0.65) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 4); i > 0; i--) o[STRINGS[Math.floor(rand() * STRINGS.length)]! + i] = randomValue(rand, depth + 1);
  return o;
}

/** JSON text of `value` with random insignificant whitespace (RFC 8259 §2) between tokens. */
function spaced(value: unknown, rand: () => number): string {
  const ws = () => (rand() < 0.3 ? [' ', '\n', '\r\n', '\t', '  '][Math.floor(rand() * 5)]! : '');
  if (Array.isArray(value)) return `[${ws()}${value.map((v) => `${ws()}${spaced(v, rand)}${ws()}`).join(',')}${ws()}]`;
  if (value !== null && typeof value === 'object') {
    return `{${ws()}${Object.entries(value).map(([k, v]) => `${ws()}${JSON.stringify(k)}${ws()}:${ws()}${spaced(v, rand)}${ws()}`).join(',')}${ws()}}`;
  }
  return JSON.stringify(value);
}

const IDS = ['1', '0', '-0', '42', '-7', '999999999999999', '"abc"', '"x y"', '""', '"日本"'];
/** Ids the scan leaves to JSON.parse: too long, fractional, with an exponent, escaped, null, not an id. */
const OTHER_IDS = ['1234567890123456', '123456789012345678901234567890123', '18446744073709551617', '1.5', '1e2', '"a\\"b"', '"\\u0041"', 'null', '{}', '[1]', 'true', '01'];

/** A response text: members in a random order, sometimes with a member too many, repeated or spelled with an escape. */
function responseText(rand: () => number): { text: string; plain: boolean } {
  let plain = true;
  const id = rand() < 0.8 ? IDS[Math.floor(rand() * IDS.length)]! : ((plain = false), OTHER_IDS[Math.floor(rand() * OTHER_IDS.length)]!);
  const ws = () => (rand() < 0.3 ? ' \n\t'[Math.floor(rand() * 3)]! : '');
  const members = [`"jsonrpc"${ws()}:${ws()}"2.0"`, `"id":${ws()}${id}`, rand() < 0.7 ? `"result":${spaced(randomValue(rand, 0), rand)}` : `"error":${spaced({ code: -32000, message: 'm', data: randomValue(rand, 1) }, rand)}`];
  const odd = rand();
  if (odd < 0.05) {
    members.push(`"extra":1`);
    plain = false;
  } else if (odd < 0.1) {
    members.push(members[Math.floor(rand() * members.length)]!);
    plain = false;
  } else if (odd < 0.13) {
    members[0] = `"json\\u0072pc":"2.0"`;
    plain = false;
  } else if (odd < 0.16) {
    members.push(`"result":{}`, `"error":{"code":1,"message":"m"}`);
    plain = false;
  }
  for (let i = members.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [members[i], members[j]] = [members[j]!, members[i]!];
  }
  return { text: `${ws()}{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}${ws()}`, plain };
}

/** One random edit: a character dropped, doubled or replaced by one that matters to the grammar, or the text cut short. */
function mutate(text: string, rand: () => number): string {
  const at = Math.floor(rand() * text.length);
  const k = rand();
  if (k < 0.25) return text.slice(0, at) + text.slice(at + 1);
  if (k < 0.5) return text.slice(0, at) + text[at] + text.slice(at);
  if (k < 0.75) return text.slice(0, at);
  const chars = '{}[]:,"\\ 0-.eE+tfnu\u0000\u001f\ud800x';
  return text.slice(0, at) + chars[Math.floor(rand() * chars.length)] + text.slice(at + 1);
}

/** What JSON.parse and the lenient check of jsonrpc.ts make of a text, as the scan must report it; undefined when they refuse it. */
function reference(text: string): JsonRpcResponse | undefined {
  try {
    const message = parseJsonRpcMessage(JSON.parse(text));
    return 'method' in message ? undefined : (message as JsonRpcResponse);
  } catch {
    return undefined;
  }
}

/** The scan vouches only for what JSON.parse reads exactly the same way: same id, same kind, same result or error. */
function assertAgrees(text: string, seed: number): boolean {
  const envelope = scanResponse(text);
  if (!envelope) return false;
  const expected = reference(text);
  assert.ok(expected, `seed ${seed}: the scan accepted what JSON.parse or the envelope check refuses: ${JSON.stringify(text)}`);
  assert.equal(idKey(envelope.id), idKey(expected.id as string | number), `seed ${seed}: id of ${JSON.stringify(text)}`);
  assert.equal(envelope.isError, 'error' in expected, `seed ${seed}: kind of ${JSON.stringify(text)}`);
  const scanned = new ScannedResponse(envelope, text);
  assert.deepEqual(scanned.result, expected.result, `seed ${seed}: result of ${JSON.stringify(text)}`);
  assert.deepEqual(scanned.error, expected.error, `seed ${seed}: error of ${JSON.stringify(text)}`);
  return true;
}

describe('JSON-RPC 2.0 §5: an upstream answer read by its envelope', () => {
  it('RFC 8259: on generated answers and random edits of them, the scan vouches only for what JSON.parse reads alike, and reads every plain answer', () => {
    let plainAccepted = 0;
    let plainTotal = 0;
    let mutatedAccepted = 0;
    let mutatedRefusedByParse = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const rand = prng(seed);
      const { text, plain } = responseText(rand);
      const accepted = assertAgrees(text, seed);
      if (plain) {
        plainTotal++;
        // A plain answer (known members once, a short id) must take the fast path, or the scan gains nothing.
        assert.ok(accepted, `seed ${seed}: a plain answer was left to JSON.parse: ${JSON.stringify(text)}`);
        plainAccepted++;
      }
      for (let m = 0; m < 6; m++) {
        const edited = mutate(text, rand);
        if (assertAgrees(edited, seed)) mutatedAccepted++;
        else if (reference(edited) === undefined) mutatedRefusedByParse++;
      }
    }
    // The generators reach both sides: most plain answers, and edits that JSON.parse refuses or that still read alike.
    assert.ok(plainTotal > 1500 && plainAccepted === plainTotal, `${plainAccepted}/${plainTotal}`);
    assert.ok(mutatedAccepted > 500, `edits still read alike: ${mutatedAccepted}`);
    assert.ok(mutatedRefusedByParse > 5000, `edits JSON.parse refuses: ${mutatedRefusedByParse}`);
  });

  it('RFC 8259 §6, §7: numbers and strings anywhere in the result are checked as JSON.parse checks them', () => {
    const numbers = ['0', '-0', '1', '-1', '10', '1.5', '0.5', '-0.5', '1e5', '1E5', '1e+5', '1e-5', '1.5e3', '01', '-', '1.', '.5', '1e', '1e+', '+1', '0x1', '1.e3', '--1', 'Infinity', 'NaN', '1_000'];
    const strings = ['""', '"a"', '"\\""', '"\\\\"', '"\\/"', '"\\b\\f\\n\\r\\t"', '"\\u00e9"', '"\\u00E9"', '"\\u00g9"', '"\\u00e"', '"\\x41"', '"\\\'"', '"a\tb"', '"a\nb"', '"a\u007fb"', '"a', 'a"', "'a'"];
    for (const token of [...numbers, ...strings, 'true', 'false', 'null', 'tru', 'nul', 'True', 'undefined']) {
      for (const text of [`{"jsonrpc":"2.0","id":1,"result":${token}}`, `{"jsonrpc":"2.0","id":1,"result":[${token}]}`, `{"jsonrpc":"2.0","id":1,"result":{"k":${token}}}`]) {
        const accepted = assertAgrees(text, 0);
        assert.equal(accepted, reference(text) !== undefined, `${text}: accepted ${accepted}`);
      }
    }
  });

  it('RFC 8259 §2: one value with whitespace around it; structure as JSON.parse reads it', () => {
    const cases: [string, boolean][] = [
      [' \r\n\t{ "jsonrpc" : "2.0" , "id" : 1 , "result" : { } } \n', true],
      ['{"jsonrpc":"2.0","id":1,"result":{}} x', false],
      ['{"jsonrpc":"2.0","id":1,"result":{}}{}', false],
      ['{"jsonrpc":"2.0","id":1,"result":[1,]}', false],
      ['{"jsonrpc":"2.0","id":1,"result":{"a":1,}}', false],
      ['{"jsonrpc":"2.0","id":1,"result":{"a" 1}}', false],
      ['{"jsonrpc":"2.0","id":1,"result":[1 2]}', false],
      ['{"jsonrpc":"2.0","id":1,"result":{"a":1]}', false],
      ['{"jsonrpc":"2.0","id":1,"result":[}', false],
      ['{"jsonrpc":"2.0","id":1,"result":{1:2}}', false],
      ['{"jsonrpc":"2.0","id":1,"result":\u00a0{}}', false],
      ['{"jsonrpc":"2.0","id":1,"result":[[],{},[{}],{"a":[]}]}', true],
    ];
    for (const [text, ok] of cases) {
      assert.equal(reference(text) !== undefined, ok, `JSON.parse on ${text}`);
      assert.equal(assertAgrees(text, 0), ok, text);
    }
  });

  it('a result nested deeper than the scan follows is left to JSON.parse, which reads it', () => {
    const deep = (n: number) => `{"jsonrpc":"2.0","id":1,"result":${'['.repeat(n)}${']'.repeat(n)}}`;
    assert.ok(scanResponse(deep(64)));
    assert.equal(scanResponse(deep(65)), undefined);
    assert.ok(reference(deep(65)));
  });

  it('JSON-RPC 2.0 §5: what is not a plain answer is left to JSON.parse and the envelope check', () => {
    const left = [
      '{"jsonrpc":"2.0","id":1,"result":1,"result":2}',
      '{"jsonrpc":"2.0","id":1,"id":2,"result":1}',
      '{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}',
      '{"jsonrpc":"2.0","id":1}',
      '{"jsonrpc":"1.0","id":1,"result":1}',
      '{"jsonrpc":"2.0 ","id":1,"result":1}',
      '{"id":1,"result":1}',
      '{"jsonrpc":"2.0","id":1,"method":"x"}',
      '{"jsonrpc":"2.0","id":1,"result":1,"extra":true}',
      '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}',
      '{"jsonrpc":"2.0","id":1.0,"result":1}',
      // Past 15 digits an id is JSON.parse's to round.
      '{"jsonrpc":"2.0","id":1234567890123456,"result":1}',
      '{"jsonrpc":"2.0","id":"\\u0031","result":1}',
      '[{"jsonrpc":"2.0","id":1,"result":1}]',
      '{}',
      '',
    ];
    for (const text of left) assert.equal(scanResponse(text), undefined, text);
    assert.deepEqual(scanResponse('{"result":{"a":[1,"2",null]},"jsonrpc":"2.0","id":-0}'), { id: -0, isError: false });
    assert.deepEqual(scanResponse('{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"req-7"}'), { id: 'req-7', isError: true });
  });

  it('a scanned answer is forwarded as its text, parsed only when read, and whole to JSON.stringify and a spread', () => {
    const text = '{"result":{"tools":[{"name":"echo"}]},\n "jsonrpc":"2.0","id":3}';
    const scanned = new ScannedResponse(scanResponse(text)!, text);
    assert.equal(serialize(scanned), text);
    assert.equal(scanned.error, undefined);
    assert.deepEqual(scanned.result, { tools: [{ name: 'echo' }] });
    assert.equal(scanned.result, scanned.result, 'parsed once');
    assert.equal(JSON.stringify(scanned), '{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"echo"}]}}');
    // The list filter builds its answer with a spread (exchange.ts) and serializes that afresh.
    assert.equal(JSON.stringify({ ...scanned, result: { tools: [] } }), '{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}');
    const error = '{"jsonrpc":"2.0","id":"a","error":{"code":-32000,"message":"no"}}';
    const failed = new ScannedResponse(scanResponse(error)!, error);
    assert.equal(failed.result, undefined);
    assert.deepEqual(failed.error, { code: -32000, message: 'no' });
    assert.equal(JSON.stringify(failed), error);
  });
});
