import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memberId, rendezvousHome, rendezvousOrder } from './rendezvous.js';

const digests = Array.from({ length: 6000 }, (_, i) => createHash('sha256').update(`chunk ${i}`).digest());
const three = ['http://198.18.0.10:5100', 'http://198.18.0.11:5100', 'http://198.18.0.12:5100'];

test('every chunk has one home; the three members share them evenly', () => {
  const counts = [0, 0, 0];
  for (const d of digests) counts[rendezvousHome(three, d)]!++;
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `share ${c} of 6000`);
});

test('the order is a permutation, the same on every call and for any listing of the members', () => {
  const reversed = [...three].reverse();
  for (const d of digests.slice(0, 500)) {
    const order = rendezvousOrder(three, d);
    assert.equal([...order].sort(), [0, 1, 2]);
    assert.equal(rendezvousOrder(three, d), order);
    assert.equal(rendezvousOrder(reversed, d).map((i) => reversed[i]), order.map((i) => three[i]));
  }
});

test('removing a member moves only its chunks, to where its failover order said', () => {
  const two = [three[0]!, three[2]!];
  for (const d of digests) {
    const order = rendezvousOrder(three, d).map((i) => three[i]);
    const now = two[rendezvousHome(two, d)];
    assert.is(now, order[0] === three[1] ? order[1] : order[0]);
  }
});

test('member identity ignores case and a trailing slash, not the port or scheme', () => {
  assert.is(memberId('HTTP://SN.example:5100/'), memberId('http://sn.example:5100'));
  assert.is.not(memberId('http://sn:5100'), memberId('http://sn:5101'));
  assert.is.not(memberId('http://sn:5100'), memberId('https://sn:5100'));
});

test.run();
