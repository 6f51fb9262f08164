import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median } from '../../bench/fixtures/median.ts';

test('median: the middle value of an odd count, whatever the order', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([7]), 7);
});

test('median: the mean of the two middle values of an even count, not the upper one', () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([0.9, 1.1]), 1);
});

test('median: the caller\'s list is left in its order', () => {
  const xs = [3, 1, 2];
  median(xs);
  assert.deepEqual(xs, [3, 1, 2]);
});
