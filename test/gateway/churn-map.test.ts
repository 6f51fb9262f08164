/**
 * ChurnMap (src/kernel/churn-map.ts): a Map whose hash table is made anew every 10 ms, so that a
 * long-lived map with entries coming and going does not make V8 promote every value that passes
 * through it. Checked here: it behaves as a Map across a renewal, and, in a child process where
 * the young generation is small and garbage collections can be counted, that churning entries
 * through a map whose table is already old promotes a fraction of what a plain Map promotes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ChurnMap } from '../../src/kernel/churn-map.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ChurnMap', () => {
  it('keeps entries, insertion order and deletions across a renewal of its table', async () => {
    const m = new ChurnMap<string, number>();
    m.set('a', 1).set('b', 2).set('c', 3);
    m.delete('b');
    await sleep(15);
    // This set renews the table (10 ms passed): everything before it must still be there.
    m.set('d', 4);
    m.set('a', 10);
    assert.equal(m.size, 3);
    assert.deepEqual([...m], [['a', 10], ['c', 3], ['d', 4]]);
    assert.deepEqual([...m.keys()], ['a', 'c', 'd']);
    assert.deepEqual([...m.values()], [10, 3, 4]);
    assert.equal(m.get('b'), undefined);
    assert.equal(m.has('c'), true);
    assert.equal(m.delete('c'), true);
    assert.equal(m.delete('c'), false);
    m.set('e', 5);
    // As with a Map, an iterator under way ends when the map is cleared.
    const running = m.values();
    assert.equal(running.next().value, 10);
    m.clear();
    assert.equal(running.next().done, true);
    assert.equal(m.size, 0);
    assert.deepEqual([...m.entries()], []);
  });

  it('promotes far less than a Map when entries churn through a table that has grown old (V8 ordered hash table rehash)', () => {
    const promoted = (kind: 'map' | 'churn') => {
      const child = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', '--import', 'tsx', CHURN_SCRIPT, kind], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.status, 0, child.stderr);
      const result = JSON.parse(child.stdout.trim().split('\n').pop()!) as { promotedBytes: number; allocatedBytes: number; scavenges: number };
      // Promotion is summed over collections named 'Scavenge': none would make both sums 0.
      assert.ok(result.scavenges > 0, `no scavenge seen while churning (${kind}): has V8 renamed its young-generation collection?`);
      return result;
    };
    const map = promoted('map');
    const churn = promoted('churn');
    // ChurnMap: the entries die young, only the last tables' few are promoted (0.1–0.6 MB of
    // 21 MB in runs on an idle machine and beside busy loops).
    assert.ok(churn.promotedBytes < churn.allocatedBytes / 10, `ChurnMap promoted ${churn.promotedBytes} of ${churn.allocatedBytes} bytes`);
    // The control, so this test can fail: a plain Map, same churn, promotes nearly all that passed
    // through (Node 20 and 22: ~21 MB, 40 to 50 times ChurnMap). If a V8 release stops doing so,
    // this fails, and ChurnMap can go back to being a Map.
    assert.ok(map.promotedBytes > 10 * churn.promotedBytes, `a Map promoted ${map.promotedBytes} bytes, ChurnMap ${churn.promotedBytes}: V8 no longer keeps the values of a replaced table alive`);
  });
});

const CHURN_SCRIPT = fileURLToPath(new URL('./fixtures/churn-map-promotion.ts', import.meta.url));
