// The cell agent's volume flags (--volume-driver-paths, --volume-drivers) as executorOptions and
// advertisedVolumeDrivers turn them into the rep's executor options and the Cell's volumeDrivers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeVolumeDriver, type FakeVolumeDriver } from '../../test/support/fake-volume-driver.ts';
import { createLogger } from '../lib/log.ts';
import { advertisedVolumeDrivers, executorOptions, type CellAgentOptions } from './cell-agent.ts';

let dir: string;
let fake: FakeVolumeDriver;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cell-agent-volumes-'));
  fake = await startFakeVolumeDriver({
    root: join(dir, 'volumes'),
    socketPath: join(dir, 'drivers', 'fakedriver.sock'),
  });
});

afterAll(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

const options = (extra: Partial<CellAgentOptions>): Omit<CellAgentOptions, 'kubeconfig'> => ({
  log: createLogger('silent'),
  cellId: 'c1',
  memoryMb: 1024,
  diskMb: 1024,
  containers: 10,
  stacks: [],
  backend: 'process',
  stateDir: join(dir, 'state'),
  ...extra,
});

describe('cell agent volume flags', () => {
  it('has no volume manager without --volume-driver-paths', async () => {
    expect((await executorOptions(options({})))?.volumes).toBeUndefined();
  });

  it('discovers the drivers of --volume-driver-paths and advertises them with those of --volume-drivers', async () => {
    const executor = await executorOptions(options({ volumeDriverPaths: [join(dir, 'drivers'), join(dir, 'none')] }));
    const volumes = executor?.volumes;
    expect(volumes?.drivers()).toEqual(['fakedriver']);
    volumes?.stop();
    const warnings: unknown[] = [];
    const log = { warn: (obj: unknown) => warnings.push(obj) };
    expect(advertisedVolumeDrivers([], volumes, log)).toEqual(['fakedriver']);
    expect(advertisedVolumeDrivers(['fakedriver'], volumes, log)).toEqual(['fakedriver']);
    expect(warnings).toEqual([]);
    // A declared driver not found (yet) is advertised, with a warning.
    expect(advertisedVolumeDrivers(['smbdriver'], volumes, log)).toEqual(['fakedriver', 'smbdriver']);
    expect(warnings).toEqual([expect.objectContaining({ missing: ['smbdriver'], found: ['fakedriver'] })]);
    expect(advertisedVolumeDrivers(['nfs'], undefined, log)).toEqual(['nfs']);
    expect(warnings).toHaveLength(2);
  });
});
