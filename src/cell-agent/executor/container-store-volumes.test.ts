// Volume services through the container store: a fake Docker volume plugin on a unix socket
// (test/support/fake-volume-driver.ts) discovered by a VolumeManager; containers of the process backend, and real
// runc containers (root, runc and busybox-static: hack/install-deps.sh) where a read-only mount is enforced.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeVolumeDriver, type FakeVolumeDriver } from '../../../test/support/fake-volume-driver.ts';
import { ProcessBackend } from '../backends/process.ts';
import { ensureBusyboxRootfs } from '../backends/rootfs.ts';
import { RuncBackend } from '../backends/runc.ts';
import { sh } from '../backends/testing.ts';
import { failure } from '../testing.ts';
import { ContainerCreateError, ContainerStore, VOLUME_MOUNT_FAILED, type ContainerRequest } from './container-store.ts';
import { LogStreamer } from './log.ts';
import { VolumeManager } from './volumes.ts';

let dir: string;
let fake: FakeVolumeDriver;
let volumes: VolumeManager;
let counter = 0;
const log = () => new LogStreamer(() => undefined);
const signal = () => new AbortController().signal;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'store-volumes-'));
  fake = await startFakeVolumeDriver({
    root: path.join(dir, 'volumes'),
    socketPath: path.join(dir, 'drivers', 'fakedriver.sock'),
  });
  volumes = new VolumeManager({ driverPaths: [path.join(dir, 'drivers')], syncIntervalMs: 0 });
  expect(await volumes.discover()).toEqual(['fakedriver']);
});

afterEach(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

const request = (extra: Partial<ContainerRequest> = {}): ContainerRequest => ({
  handle: `v-${process.pid}-${++counter}`,
  properties: {},
  env: [],
  limits: {},
  ports: [],
  ...extra,
});

const mount = (
  volumeId: string,
  containerDir: string,
  mode: 'r' | 'rw' = 'rw',
  config: Record<string, unknown> = {},
) => ({
  driver: 'fakedriver',
  volumeId,
  containerDir,
  mode,
  config,
});

const driverCalls = () => fake.calls.filter((c) => c.route !== '/Plugin.Activate').map((c) => [c.route, c.body]);

describe('container store volume mounts (process backend)', () => {
  let backend: ProcessBackend;
  beforeEach(() => {
    backend = new ProcessBackend({ baseDir: path.join(dir, 'containers') });
  });
  afterEach(async () => {
    for (const h of await backend.list()) await backend.destroy(h);
  });
  const store = (v: VolumeManager | null = volumes) =>
    new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), ...(v ? { volumes: v } : {}) });

  it('mounts each volume through its driver at containerDir and unmounts it on destroy', async () => {
    const s = store();
    const req = request({ volumeMounts: [mount('vol-1', '/data', 'rw', { uid: '2000' }), mount('vol-2', '/ro', 'r')] });
    const { container } = await s.create(req, log(), signal());
    await writeFile(path.join(fake.dirOf('vol-1'), 'hello'), 'from the share');
    const root = path.join(dir, 'containers', container.handle);
    expect(await readFile(path.join(root, 'data/hello'), 'utf8')).toBe('from the share');
    await writeFile(path.join(root, 'data/written'), 'by the container');
    expect(await readFile(path.join(fake.dirOf('vol-1'), 'written'), 'utf8')).toBe('by the container');
    expect(existsSync(path.join(root, 'ro'))).toBe(true);
    expect(JSON.parse(container.properties['executor.volume-mounts']!)).toEqual([
      { driver: 'fakedriver', volumeId: 'vol-1' },
      { driver: 'fakedriver', volumeId: 'vol-2' },
    ]);
    expect(Object.fromEntries(fake.mounts)).toEqual({ 'vol-1': 1, 'vol-2': 1 });
    await s.destroy(container.handle);
    expect(fake.mounts.size).toBe(0);
    expect(driverCalls()).toEqual([
      ['/VolumeDriver.Create', { Name: 'vol-1', Opts: { uid: '2000' } }],
      ['/VolumeDriver.Mount', { Name: 'vol-1' }],
      ['/VolumeDriver.Create', { Name: 'vol-2', Opts: {} }],
      ['/VolumeDriver.Mount', { Name: 'vol-2' }],
      ['/VolumeDriver.Unmount', { Name: 'vol-1' }],
      ['/VolumeDriver.Unmount', { Name: 'vol-2' }],
    ]);
    await s.destroy(container.handle); // a second destroy unmounts nothing more
    expect(driverCalls()).toHaveLength(6);
  });

  it("fails with 'failed to mount volume' (+ the driver's SafeError) and unmounts what it had mounted", async () => {
    const s = store();
    fake.failNext('/VolumeDriver.Mount', JSON.stringify({ SafeDescription: 'share not exported' }));
    const safe = await failure(() => s.create(request({ volumeMounts: [mount('vol-1', '/data')] }), log(), signal()));
    expect(safe).toBeInstanceOf(ContainerCreateError);
    expect(safe).toMatchObject({ reason: 'failed to mount volume, errors: share not exported', retryable: true });

    // The second mount fails with a plain error: users see only Diego's reason; the first is unmounted.
    fake.mountErrors.set('vol-2', 'mount.nfs: access denied by server');
    const plain = await failure(() =>
      s.create(request({ volumeMounts: [mount('vol-1', '/a'), mount('vol-2', '/b')] }), log(), signal()),
    );
    expect(plain).toMatchObject({ reason: VOLUME_MOUNT_FAILED, retryable: true });
    expect(driverCalls().at(-1)).toEqual(['/VolumeDriver.Unmount', { Name: 'vol-1' }]);
    expect(fake.mounts.size).toBe(0);

    const unknown = await failure(() =>
      s.create(request({ volumeMounts: [{ ...mount('v', '/v'), driver: 'smbdriver' }] }), log(), signal()),
    );
    expect(unknown).toMatchObject({ reason: VOLUME_MOUNT_FAILED, retryable: true });

    const noDrivers = await failure(() =>
      store(null).create(request({ volumeMounts: [mount('v', '/v')] }), log(), signal()),
    );
    expect(noDrivers).toMatchObject({ reason: VOLUME_MOUNT_FAILED, retryable: true });

    // A mount the rep could not convert (its mountConfig is not a JSON object) is not retried elsewhere.
    const calls = driverCalls().length;
    const invalid = await failure(() =>
      s.create(
        request({ volumeMounts: [{ ...mount('v', '/v'), invalid: "mountConfig of volume 'v' is not a JSON object" }] }),
        log(),
        signal(),
      ),
    );
    expect(invalid).toMatchObject({
      reason: "failed to mount volume, errors: mountConfig of volume 'v' is not a JSON object",
      retryable: false,
    });
    expect(driverCalls()).toHaveLength(calls);
    expect(await backend.list()).toEqual([]);
  });

  it('shares a volume between containers: destroying one leaves the other mounted', async () => {
    const s = store();
    fake.delay.set('/VolumeDriver.Mount', 50);
    const [a, b] = await Promise.all([
      s.create(request({ volumeMounts: [mount('shared', '/data')] }), log(), signal()),
      s.create(request({ volumeMounts: [mount('shared', '/data')] }), log(), signal()),
    ]);
    expect(fake.mounts.get('shared')).toBe(2);
    expect(fake.maxConcurrentPerVolume).toBe(1);
    const dataOf = (h: string) => path.join(dir, 'containers', h, 'data');
    await writeFile(path.join(dataOf(a.container.handle), 'from-a'), 'a');
    expect(await readFile(path.join(dataOf(b.container.handle), 'from-a'), 'utf8')).toBe('a');
    await s.destroy(a.container.handle);
    expect(fake.mounts.get('shared')).toBe(1);
    expect(await readFile(path.join(dataOf(b.container.handle), 'from-a'), 'utf8')).toBe('a');
    await s.destroy(b.container.handle);
    expect(fake.mounts.has('shared')).toBe(false);
  });

  it("a restarted agent's store unmounts the volumes of the containers it adopts, and of orphans it destroys", async () => {
    const first = store();
    const adopted = await first.create(request({ volumeMounts: [mount('vol-1', '/data')] }), log(), signal());
    const orphan = await first.create(request({ volumeMounts: [mount('vol-2', '/data')] }), log(), signal());
    first.detachAll(); // the agent hands its containers over

    const restarted = new VolumeManager({ driverPaths: [path.join(dir, 'drivers')], syncIntervalMs: 0 });
    await restarted.discover();
    const second = store(restarted);
    await second.adopt(adopted.container, { ports: [] });
    await second.destroy(adopted.container.handle);
    expect(Object.fromEntries(fake.mounts)).toEqual({ 'vol-2': 1 });
    // Not adopted (its work is gone): bulk sync destroys it, twice at once; it is unmounted once.
    await Promise.all([second.destroy(orphan.container.handle), second.destroy(orphan.container.handle)]);
    expect(fake.mounts.size).toBe(0);
    expect(driverCalls().filter(([route]) => route === '/VolumeDriver.Unmount')).toHaveLength(2);
  });
});

describe('container store volume mounts (runc)', () => {
  let rdir: string;
  let backend: RuncBackend;
  const prefix = `sv${process.pid}-`;

  beforeAll(async () => {
    rdir = await mkdtemp(path.join(tmpdir(), 'store-volumes-runc-'));
    backend = new RuncBackend({ stateDir: path.join(rdir, 'state'), idPrefix: prefix, outputDrainMs: 100 });
    await ensureBusyboxRootfs();
  }, 60_000);

  afterEach(async () => {
    for (const h of await backend.list()) await backend.destroy(h);
  });

  afterAll(async () => {
    await rm(rdir, { recursive: true, force: true });
  });

  it('bind-mounts a shared volume read-write in one container and read-only (enforced) in another', async () => {
    const s = new ContainerStore({ backend, stateDir: path.join(rdir, 'exec'), volumes });
    await writeFile(path.join(await mkdirVolume('shared'), 'seed'), 'seeded on the share\n');
    const writer = await s.create(
      request({ rootfs: 'preloaded:busybox', volumeMounts: [mount('shared', '/var/data', 'rw')] }),
      log(),
      signal(),
    );
    const reader = await s.create(
      request({ rootfs: 'preloaded:busybox', volumeMounts: [mount('shared', '/mnt/ro', 'r')] }),
      log(),
      signal(),
    );
    expect(
      (await sh(writer.container, 'cat /var/data/seed && echo hi > /var/data/out && cat /var/data/out')).out,
    ).toEqual(['seeded on the share', 'hi']);
    expect(await readFile(path.join(fake.dirOf('shared'), 'out'), 'utf8')).toBe('hi\n');
    const ro = await sh(reader.container, 'cat /mnt/ro/out; echo x > /mnt/ro/denied');
    expect(ro.out).toEqual(['hi']);
    expect(ro.status).not.toBe(0);
    expect(ro.err.join('\n')).toMatch(/Read-only file system/);
    expect(existsSync(path.join(fake.dirOf('shared'), 'denied'))).toBe(false);

    await s.destroy(writer.container.handle);
    expect(fake.mounts.get('shared')).toBe(1); // the reader's mount stays
    expect((await sh(reader.container, 'cat /mnt/ro/seed')).out).toEqual(['seeded on the share']);
    await s.destroy(reader.container.handle);
    expect(fake.mounts.has('shared')).toBe(false);
  }, 60_000);
});

/** The fake driver's directory of a volume, made before any Create (a share that already has data). */
async function mkdirVolume(name: string): Promise<string> {
  await mkdir(fake.dirOf(name), { recursive: true });
  return fake.dirOf(name);
}
