import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DiegoCache, Lease } from './cache.ts';
import { CellPresence } from './presence.ts';

const log = pino({ level: 'silent' });
const lease = (cell: string, rv: string, renewedAgoMs = 0): Lease => ({
  metadata: { name: cell, resourceVersion: rv },
  spec: {
    holderIdentity: cell,
    leaseDurationSeconds: 1,
    renewTime: new Date(Date.now() - renewedAgoMs).toISOString(),
  },
});

function fakeCache(initial: Lease[]) {
  const leases = Object.assign(new EventEmitter(), { list: () => initial });
  return { cache: { leases } as unknown as DiegoCache, leases };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cell presence (a leader confirming losses)', () => {
  it('times a lease from its own first look, not from renewals it never saw', async () => {
    const { cache } = fakeCache([lease('c1', '1', 60_000)]); // renewed a minute ago by the lease's own clock
    const p = new CellPresence(cache, log, Date.now, () => Promise.resolve(lease('c1', '1', 60_000)));
    p.init();
    expect(p.isPresent('c1')).toBe(true); // a new leader gives it one TTL
    await sleep(1400);
    expect(p.isPresent('c1')).toBe(false); // no renewal since: lost
  });

  it('keeps a cell whose renewal the watch has not delivered yet', async () => {
    const { cache } = fakeCache([lease('c1', '1')]);
    let version = 1;
    const p = new CellPresence(cache, log, Date.now, () => Promise.resolve(lease('c1', String(++version))));
    p.init();
    await sleep(1400);
    expect(p.isPresent('c1')).toBe(true); // each expiry check read a newer version
    p.stop();
  });

  it('does not judge while the API server cannot answer, then gives cells a TTL from its return', async () => {
    const { cache } = fakeCache([lease('c1', '1')]);
    let down = true;
    const p = new CellPresence(cache, log, Date.now, () =>
      down ? Promise.reject(new Error('connection refused')) : Promise.resolve(lease('c1', '1')),
    );
    const lost: string[] = [];
    p.on('disappeared', (c) => lost.push(c));
    p.init();
    await sleep(2500); // well past the TTL, API down: still present
    expect(p.isPresent('c1')).toBe(true);
    down = false;
    await sleep(300);
    expect(p.isPresent('c1')).toBe(true); // grace: a TTL from the outage
    await sleep(2000);
    expect(lost).toEqual(['c1']); // it did not renew after the API came back
  });
});
