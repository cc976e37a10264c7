import { describe, expect, it } from 'vitest';
import type { Lease } from '../lib/lease.ts';
import { microTime } from '../lib/lease.ts';
import {
  ANNOTATION_LOCKET_KEY,
  ANNOTATION_LOCKET_VALUE,
  cellPresenceJson,
  Code,
  expiredLocks,
  fetch,
  fetchAll,
  LABEL_LOCKET,
  leaseNameForKey,
  MAX_LOCKS,
  planLock,
  planRelease,
  presentCellIds,
  TYPE_LOCK,
  TYPE_PRESENCE,
  TYPE_UNKNOWN,
} from './locket-rules.ts';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const at = (msAgo: number) => microTime(new Date(NOW - msAgo));

function lock(key: string, owner: string, ttl = 30, renewedMsAgo = 0, value = ''): Lease {
  return {
    metadata: {
      name: leaseNameForKey(key),
      resourceVersion: '7',
      labels: { [LABEL_LOCKET]: 'true' },
      annotations: { [ANNOTATION_LOCKET_KEY]: key, [ANNOTATION_LOCKET_VALUE]: value },
    },
    spec: {
      holderIdentity: owner,
      leaseDurationSeconds: ttl,
      acquireTime: at(renewedMsAgo + 60_000),
      renewTime: at(renewedMsAgo),
    },
  };
}
const leader: Lease = {
  metadata: { name: 'diego-operator-controller' },
  spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 12, renewTime: at(1000) },
};
const presence = (cell: string, renewedMsAgo = 0): Lease => ({
  metadata: { name: cell, labels: { 'diego.dev/cell-presence': 'true' } },
  spec: { holderIdentity: cell, leaseDurationSeconds: 15, renewTime: at(renewedMsAgo) },
});
const domain: Lease = {
  metadata: { name: 'bbs-domain-abc', labels: { 'diego.dev/bbs-domain': 'true' } },
  spec: { holderIdentity: 'bbs', renewTime: at(0) },
};
const req = (key: string, owner: string, ttl: number | bigint = 10, typeCode = TYPE_LOCK, value = 'v') => ({
  resource: { key, owner, value, typeCode },
  ttlInSeconds: ttl,
});

describe('planLock', () => {
  it('creates a free lock as a labelled Lease: owner = holder, ttl = duration, key and value in annotations', () => {
    const plan = planLock(req('bbs', 'me', 15), [], NOW);
    expect(plan).toMatchObject({
      op: 'create',
      lease: {
        metadata: {
          name: leaseNameForKey('bbs'),
          labels: { [LABEL_LOCKET]: 'true' },
          annotations: { [ANNOTATION_LOCKET_KEY]: 'bbs', [ANNOTATION_LOCKET_VALUE]: 'v' },
        },
        spec: { holderIdentity: 'me', leaseDurationSeconds: 15, renewTime: microTime(new Date(NOW)) },
      },
    });
    expect(plan.op === 'create' && plan.lease.metadata?.resourceVersion).toBeFalsy();
  });

  it('renews its own lock (value and ttl replaced, acquire time kept), against the version it read', () => {
    const held = lock('bbs', 'me', 30, 5000, 'old');
    const plan = planLock(req('bbs', 'me', 20, TYPE_LOCK, 'new'), [held], NOW);
    expect(plan).toMatchObject({
      op: 'update',
      lease: {
        metadata: { resourceVersion: '7', annotations: { [ANNOTATION_LOCKET_VALUE]: 'new' } },
        spec: { holderIdentity: 'me', leaseDurationSeconds: 20, acquireTime: held.spec!.acquireTime },
      },
    });
  });

  it("refuses someone else's live lock (lock-collision); takes it over once it has expired", () => {
    expect(planLock(req('bbs', 'you'), [lock('bbs', 'me', 30, 29_000)], NOW)).toMatchObject({
      op: 'refuse',
      error: { code: Code.ALREADY_EXISTS, message: 'lock-collision' },
    });
    const plan = planLock(req('bbs', 'you'), [lock('bbs', 'me', 30, 31_000)], NOW);
    expect(plan).toMatchObject({ op: 'update', lease: { spec: { holderIdentity: 'you', acquireTime: at(0) } } });
  });

  it("refuses the operator's own Leases by name, whoever holds them, and never touches presences or domains", () => {
    expect(planLock(req('diego-operator-controller', 'x'), [leader], NOW)).toMatchObject({
      op: 'refuse',
      error: { message: 'lock-collision' },
    });
    expect(planLock(req('cell-1', 'x'), [presence('cell-2')], NOW)).toMatchObject({ op: 'create' });
    expect(planLock(req('bbs-domain-abc', 'x'), [domain], NOW)).toMatchObject({ op: 'create' });
  });

  it.each([
    ['an unknown type', req('k', 'o', 10, TYPE_UNKNOWN), Code.NOT_FOUND, 'invalid-type'],
    ['type 7', req('k', 'o', 10, 7), Code.NOT_FOUND, 'invalid-type'],
    ['ttl 0', req('k', 'o', 0), Code.INVALID_ARGUMENT, 'invalid-ttl'],
    ['a negative ttl', req('k', 'o', -5n), Code.INVALID_ARGUMENT, 'invalid-ttl'],
    ['a ttl beyond int32', req('k', 'o', 2n ** 31n), Code.INVALID_ARGUMENT, 'invalid-ttl'],
    ['no owner', req('k', ''), Code.INVALID_ARGUMENT, 'invalid-owner'],
    ['a 256-byte owner', req('k', 'o'.repeat(256)), Code.INVALID_ARGUMENT, 'invalid-owner'],
    ['no key', req('', 'o'), Code.INVALID_ARGUMENT, 'invalid-key: a key is 1 to 255 bytes'],
    ['a 256-byte key', req('é'.repeat(128), 'o'), Code.INVALID_ARGUMENT, 'invalid-key: a key is 1 to 255 bytes'],
    ['a 64 KiB + 1 value', req('k', 'o', 10, TYPE_LOCK, 'v'.repeat(65537)), Code.INVALID_ARGUMENT, 'invalid-value'],
  ])('refuses %s', (_what, r, code, message) => {
    const plan = planLock(r, [], NOW);
    expect(plan.op).toBe('refuse');
    if (plan.op === 'refuse') {
      expect(plan.error.code).toBe(code);
      expect(plan.error.message.startsWith(message)).toBe(true);
    }
  });

  it('refuses a presence claim (cells are present through their agents), saying how cells join', () => {
    const plan = planLock(req('cell-9', 'rep', 15, TYPE_PRESENCE), [], NOW);
    expect(plan).toMatchObject({ op: 'refuse', error: { code: Code.UNIMPLEMENTED } });
    expect(plan.op === 'refuse' && plan.error.message).toMatch(/cell agent/);
  });

  it('refuses a new lock beyond the bound, but still renews held ones; expired locks do not count', () => {
    const many = Array.from({ length: MAX_LOCKS }, (_, i) => lock(`k${i}`, 'o'));
    expect(planLock(req('one-more', 'o'), many, NOW)).toMatchObject({
      op: 'refuse',
      error: { code: Code.RESOURCE_EXHAUSTED },
    });
    expect(planLock(req('k3', 'o'), many, NOW)).toMatchObject({ op: 'update' });
    const expired = Array.from({ length: MAX_LOCKS }, (_, i) => lock(`k${i}`, 'o', 5, 6000));
    expect(planLock(req('one-more', 'o'), expired, NOW)).toMatchObject({ op: 'create' });
  });

  it("refuses a present cell's id (its presence's key) and a Lease of that name holding another key", () => {
    expect(planLock(req('cell-1', 'x'), [presence('cell-1')], NOW)).toMatchObject({
      op: 'refuse',
      error: { message: 'lock-collision' },
    });
    expect(planLock(req('cell-1', 'x'), [presence('cell-1', 16_000)], NOW)).toMatchObject({ op: 'create' });
    const other = lock('bbs', 'me');
    other.metadata!.annotations![ANNOTATION_LOCKET_KEY] = 'another key with the same hash';
    expect(planLock(req('bbs', 'me'), [other], NOW)).toMatchObject({
      op: 'refuse',
      error: { message: 'lock-collision' },
    });
    expect(planRelease({ key: 'bbs', owner: 'me' }, [other], NOW)).toEqual({ op: 'none' });
  });
});

describe('planRelease', () => {
  it("releases its own lock, refuses another's, and is a no-op for an absent or expired one", () => {
    const held = lock('bbs', 'me');
    expect(planRelease({ key: 'bbs', owner: 'me' }, [held], NOW)).toEqual({ op: 'delete', lease: held });
    expect(planRelease({ key: 'bbs', owner: 'you' }, [held], NOW)).toMatchObject({
      op: 'refuse',
      error: { message: 'lock-collision' },
    });
    expect(planRelease({ key: 'other', owner: 'me' }, [held], NOW)).toEqual({ op: 'none' });
    const expired = lock('bbs', 'me', 5, 6000);
    expect(planRelease({ key: 'bbs', owner: 'you' }, [expired], NOW)).toEqual({ op: 'delete', lease: expired });
  });

  it("refuses to release the operator's own Leases", () => {
    expect(planRelease({ key: 'diego-operator-controller', owner: 'pod-a' }, [leader], NOW)).toMatchObject({
      op: 'refuse',
    });
  });
});

describe('fetchAll and fetch', () => {
  const leases = [leader, lock('bbs', 'me', 30, 0, 'v'), lock('gone', 'me', 5, 6000), presence('cell-1'), domain];
  const cells = [{ cellId: 'cell-1', holder: 'cell-1', value: '{"cell_id":"cell-1"}' }];

  it('lists live locks (Locket-made and the operator own) sorted by key, and present cells as presences', () => {
    expect(fetchAll(TYPE_LOCK, leases, cells, NOW)).toEqual([
      { key: 'bbs', owner: 'me', value: 'v', type: 'lock', typeCode: TYPE_LOCK },
      { key: 'diego-operator-controller', owner: 'pod-a', value: '', type: 'lock', typeCode: TYPE_LOCK },
    ]);
    expect(fetchAll(TYPE_PRESENCE, leases, cells, NOW)).toEqual([
      { key: 'cell-1', owner: 'cell-1', value: '{"cell_id":"cell-1"}', type: 'presence', typeCode: TYPE_PRESENCE },
    ]);
    expect(() => fetchAll(TYPE_UNKNOWN, leases, cells, NOW)).toThrow('invalid-type');
  });

  it('fetches one by key; an expired or unknown key is resource-not-found', () => {
    expect(fetch('cell-1', leases, cells, NOW)).toMatchObject({ typeCode: TYPE_PRESENCE });
    expect(fetch('diego-operator-controller', leases, cells, NOW)).toMatchObject({ owner: 'pod-a' });
    expect(() => fetch('gone', leases, cells, NOW)).toThrow('resource-not-found');
    expect(() => fetch('nope', leases, cells, NOW)).toThrow('resource-not-found');
  });

  it('knows which cells are present and which locks have expired', () => {
    expect([...presentCellIds([presence('a'), presence('b', 16_000), leader], NOW)]).toEqual(['a']);
    expect(expiredLocks(leases, NOW).map((l) => l.metadata?.annotations?.[ANNOTATION_LOCKET_KEY])).toEqual(['gone']);
  });
});

describe('cellPresenceJson', () => {
  it("writes a Cell's spec with Diego's CellPresence JSON names", () => {
    expect(
      JSON.parse(
        cellPresenceJson({
          cellId: 'c1',
          repAddress: 'http://10.0.0.1:1800',
          zone: 'z1',
          capacity: { memoryMb: 1024, diskMb: 2048, containers: 250 },
          rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }, { name: 'docker' }],
          placementTags: ['a'],
        }),
      ),
    ).toEqual({
      cell_id: 'c1',
      rep_address: 'http://10.0.0.1:1800',
      zone: 'z1',
      capacity: { memory_mb: 1024, disk_mb: 2048, containers: 250 },
      rootfs_provider_list: [
        { name: 'preloaded', properties: ['cflinuxfs4'] },
        { name: 'docker', properties: [] },
      ],
      placement_tags: ['a'],
      optional_placement_tags: [],
      rep_url: '',
    });
  });
});
