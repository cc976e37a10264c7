// Volume services end to end: a rep with a runc cell whose volume driver (a fake Docker volume plugin on a unix
// socket, test/support/fake-volume-driver.ts) is found in its driver path, beside a simulated cell without
// drivers. A DesiredLRP with a shared volume mount is placed on the cell that has the driver, its instances read
// and write the volume, a restarted agent still unmounts what the previous one mounted, and a mount the cell
// cannot make crashes the instance with Diego's reason.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import type { Rep } from '../../src/cell-agent/rep.ts';
import { VolumeManager } from '../../src/cell-agent/executor/volumes.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { startFakeVolumeDriver, type FakeVolumeDriver } from '../support/fake-volume-driver.ts';
import { useDiego } from '../support/fixture.ts';
import { testRep } from '../support/runc-cell.ts';

const env = useDiego('e2e-vol', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-e2e-vol-'));
const prefix = `ev${process.pid}-`;
const cellId = `vol-cell-${process.pid}`;
const driverPath = path.join(dir, 'drivers');
let fake: FakeVolumeDriver;
let rep: Rep;
let volumes: VolumeManager;

/** This file's cell: runc on the host network, the driver path's drivers (a restart builds the same again). */
async function startCell(): Promise<void> {
  volumes = new VolumeManager({ driverPaths: [driverPath], syncIntervalMs: 0, logger: env.log });
  await volumes.discover();
  rep = testRep(env, new RuncBackend({ stateDir: path.join(dir, 'state'), idPrefix: prefix, outputDrainMs: 100 }), {
    cellId,
    executor: { stateDir: path.join(dir, 'executor'), volumes },
    volumeDrivers: volumes.drivers(),
  });
  await rep.start();
}

beforeAll(async () => {
  mkdirSync(driverPath, { recursive: true });
  fake = await startFakeVolumeDriver({
    root: path.join(dir, 'volumes'),
    socketPath: path.join(driverPath, 'fakedriver.sock'),
  });
  await startCell();
}, 120_000);

afterAll(async () => {
  await rep?.stop();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const app = (name: string, instances: number, mountConfig: string): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name, namespace: env.ns },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 32,
    volumeMounts: [
      { driver: 'fakedriver', containerDir: '/var/data', mode: 'rw', shared: { volumeId: 'shared-vol', mountConfig } },
    ],
    action: {
      run: {
        path: '/bin/sh',
        args: ['-c', 'cat /var/data/seed > /var/data/out-$INSTANCE_INDEX && while true; do sleep 1; done'],
        user: 'root',
      },
    },
  },
});

const instances = (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });

describe('volume services end to end (runc)', () => {
  it('places an app with a volume mount on the cell with the driver; its instances read and write the shared volume', async () => {
    const [plain] = await env.startCells(1); // a cell without volume drivers: never chosen
    const cell = await client.get('Cell', undefined, cellObjectName(cellId));
    expect(cell.spec.volumeDrivers).toEqual(['fakedriver']);
    mkdirSync(fake.dirOf('shared-vol'), { recursive: true });
    writeFileSync(path.join(fake.dirOf('shared-vol'), 'seed'), 'on the share\n');

    await client.create('DesiredLRP', app('files', 2, '{"source":"nfs://server/export","uid":"0"}'));
    const running = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(2);
      return all;
    }, 60_000);
    for (const a of running) {
      expect(a.spec.cellId).toBe(cellId);
      // The auction explains the placement: the simulated cell was filtered out for want of the driver.
      expect(a.metadata.annotations?.['diego.dev/placement']).toMatch(/[1-9]\d* without volume drivers/);
    }
    expect(plain!.name).not.toBe(cellObjectName(cellId));
    for (const index of [0, 1]) {
      await eventually(
        () => expect(readFileSync(path.join(fake.dirOf('shared-vol'), `out-${index}`), 'utf8')).toBe('on the share\n'),
        30_000,
      );
    }
    expect(fake.mounts.get('shared-vol')).toBe(2);
    expect(fake.calls.filter((c) => c.route === '/VolumeDriver.Create').map((c) => c.body)).toEqual([
      { Name: 'shared-vol', Opts: { source: 'nfs://server/export', uid: '0' } },
      { Name: 'shared-vol', Opts: { source: 'nfs://server/export', uid: '0' } },
    ]);

    // One instance goes: its unmount leaves the other's mount.
    await client.patch('DesiredLRP', { namespace: env.ns, name: 'files' }, { spec: { instances: 1 } });
    await eventually(() => expect(fake.mounts.get('shared-vol')).toBe(1), 30_000);

    // The agent restarts (its containers stay); the next one adopts the instance and unmounts its volume when the
    // app is deleted.
    await rep.stop({ leaveContainers: true });
    await startCell();
    expect(fake.mounts.get('shared-vol')).toBe(1);
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'files' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(() => expect(fake.mounts.has('shared-vol')).toBe(false), 30_000);
    expect(existsSync(path.join(fake.dirOf('shared-vol'), 'seed'))).toBe(true); // the data stays on the share
  }, 180_000);

  it("crashes an instance whose volume cannot be mounted with Diego's 'failed to mount volume' reason", async () => {
    fake.mountErrors.set('shared-vol', JSON.stringify({ SafeDescription: 'export nfs://server/export not found' }));
    try {
      await client.create('DesiredLRP', app('unmountable', 1, '{}'));
      const crashed = await eventually(async () => {
        const [a] = await instances();
        expect(a?.status?.crashCount).toBeGreaterThanOrEqual(1);
        return a!;
      }, 60_000);
      expect(crashed.status?.crashReason).toBe('failed to mount volume, errors: export nfs://server/export not found');
    } finally {
      fake.mountErrors.clear();
    }
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'unmountable' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);

    await client.create('DesiredLRP', app('bad-config', 1, '{not json'));
    const bad = await eventually(async () => {
      const [a] = await instances();
      expect(a?.status?.crashCount).toBeGreaterThanOrEqual(1);
      return a!;
    }, 60_000);
    expect(bad.status?.crashReason).toMatch(
      /^failed to mount volume, errors: mountConfig of volume 'shared-vol' is not JSON/,
    );
    expect(fake.mounts.size).toBe(0);
  }, 180_000);
});
