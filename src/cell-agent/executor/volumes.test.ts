// The volume manager (volman) against a fake Docker volume plugin (test/support/fake-volume-driver.ts): driver
// discovery from driver paths, the calls and bodies of a mount and an unmount, SafeErrors, shared volumes.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeVolumeDriver, type FakeVolumeDriver } from '../../../test/support/fake-volume-driver.ts';
import { createCA, issueCert, writeCertFiles } from '../../lib/certs.ts';
import { failure } from '../testing.ts';
import { canonicalAddress, uniqueVolumeId, VolumeDriverError, VolumeManager } from './volumes.ts';

let dir: string;
let drivers: FakeVolumeDriver[];
let managers: VolumeManager[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'volumes-'));
  drivers = [];
  managers = [];
});

afterEach(async () => {
  for (const m of managers) m.stop();
  for (const d of drivers) await d.close();
  await rm(dir, { recursive: true, force: true });
});

/** A fake driver listening on `<driverDir>/<name>.sock` (or on TCP without a name), volumes under dir/<id>. */
async function driver(driverDir?: string, name?: string, extra: { implements?: string[] } = {}) {
  const root = path.join(dir, `volumes-${drivers.length}`);
  if (driverDir) await mkdir(driverDir, { recursive: true });
  const d = await startFakeVolumeDriver({
    root,
    ...(driverDir && name ? { socketPath: path.join(driverDir, `${name}.sock`) } : {}),
    ...extra,
  });
  drivers.push(d);
  return d;
}

function manager(driverPaths: string[], syncIntervalMs = 0) {
  const m = new VolumeManager({ driverPaths, syncIntervalMs, activateTimeoutMs: 2_000 });
  managers.push(m);
  return m;
}

const bodiesOf = (d: FakeVolumeDriver, route?: string) =>
  d.calls.filter((c) => !route || c.route === route).map((c) => [c.route, c.body]);

describe('volume driver discovery', () => {
  it('finds <name>.sock, <name>.spec (a URL) and <name>.json (Addr) drivers that activate as VolumeDriver', async () => {
    const paths = path.join(dir, 'drivers');
    const sock = await driver(paths, 'sockdriver');
    const bySpec = await driver();
    const byJson = await driver();
    await writeFile(path.join(paths, 'specdriver.spec'), `${bySpec.url}\n`);
    await writeFile(
      path.join(paths, 'jsondriver.json'),
      JSON.stringify({ Name: 'ignored', Addr: byJson.url.replace('http://', 'tcp://') }),
    );
    const notADriver = await driver(undefined, undefined, { implements: ['NetworkDriver'] });
    await writeFile(path.join(paths, 'network.spec'), notADriver.url);
    await writeFile(path.join(paths, 'gone.spec'), 'http://127.0.0.1:1\n');
    await writeFile(path.join(paths, 'broken.json'), '{not json');
    await writeFile(path.join(paths, 'README.md'), 'not a spec');

    const m = manager([paths, path.join(dir, 'not-there-yet')]);
    expect(await m.discover()).toEqual(['jsondriver', 'sockdriver', 'specdriver']);
    expect(m.drivers()).toEqual(['jsondriver', 'sockdriver', 'specdriver']);
    expect(m.driverInfo()).toEqual([
      {
        name: 'jsondriver',
        specFile: path.join(paths, 'jsondriver.json'),
        address: byJson.url,
        uniqueVolumeIds: false,
      },
      {
        name: 'sockdriver',
        specFile: path.join(paths, 'sockdriver.sock'),
        address: path.join(paths, 'sockdriver.sock'),
        uniqueVolumeIds: false,
      },
      {
        name: 'specdriver',
        specFile: path.join(paths, 'specdriver.spec'),
        address: bySpec.url,
        uniqueVolumeIds: false,
      },
    ]);
    for (const d of [sock, bySpec, byJson, notADriver]) expect(bodiesOf(d)).toEqual([['/Plugin.Activate', undefined]]);
  });

  it('takes json before spec before sock in one path, an earlier path before a later one, and falls back when a file does not answer', async () => {
    const first = path.join(dir, 'first');
    const second = path.join(dir, 'second');
    const sockA = await driver(first, 'a'); // a.json in the same path wins over it
    const jsonA = await driver();
    await writeFile(path.join(first, 'a.json'), JSON.stringify({ Addr: jsonA.url }));
    const specB = await driver();
    await writeFile(path.join(first, 'b.spec'), specB.url);
    const sockB = await driver(second, 'b'); // b is taken from the first path
    await writeFile(path.join(first, 'c.json'), JSON.stringify({ Addr: 'http://127.0.0.1:1' })); // unreachable
    const sockC = await driver(first, 'c'); // so c.sock stands in
    const m = manager([first, second]);
    expect(await m.discover()).toEqual(['a', 'b', 'c']);
    expect(m.driverInfo().map((d) => [d.name, d.address])).toEqual([
      ['a', jsonA.url],
      ['b', specB.url],
      ['c', path.join(first, 'c.sock')],
    ]);
    expect(sockA.calls).toEqual([]);
    expect(sockB.calls).toEqual([]);
    expect(sockC.calls).toHaveLength(1);
  });

  it('re-discovers: a driver that appears is added, one that stops answering is dropped', async () => {
    const paths = path.join(dir, 'drivers');
    const a = await driver(paths, 'a');
    const m = manager([paths], 100);
    expect(await m.discover()).toEqual(['a']);
    m.start();
    await driver(paths, 'b');
    await a.close();
    drivers.splice(drivers.indexOf(a), 1);
    const deadline = Date.now() + 20_000;
    while (m.drivers().join() !== 'b') {
      if (Date.now() > deadline) throw new Error(`drivers: ${m.drivers().join()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    m.stop();
  });

  it('canonicalizes addresses as volman does', () => {
    expect(canonicalAddress('http://h:1/p')).toBe('http://h:1/p');
    expect(canonicalAddress('https://h:1')).toBe('https://h:1');
    expect(canonicalAddress('tcp://h:1')).toBe('http://h:1');
    expect(canonicalAddress('unix:///var/vcap/d.sock')).toBe('/var/vcap/d.sock');
    expect(canonicalAddress('/var/vcap/d.sock')).toBe('/var/vcap/d.sock');
    expect(canonicalAddress('localhost:9750')).toBe('http://localhost:9750');
    expect(uniqueVolumeId('vol_1', 'container_a')).toBe('vol=1_container=a');
  });
});

describe('volume mounts through a driver', () => {
  it('mounts with Create {Name, Opts} then Mount {Name}, answers the Mountpoint, and unmounts with Unmount {Name}', async () => {
    const paths = path.join(dir, 'drivers');
    const d = await driver(paths, 'nfs');
    const m = manager([paths]);
    await m.discover();
    const hostPath = await m.mount('nfs', 'vol-1', 'container-1', { source: 'nfs://server/share', uid: '2000' });
    expect(hostPath).toBe(d.dirOf('vol-1'));
    await m.unmount('nfs', 'vol-1', 'container-1');
    expect(bodiesOf(d).slice(1)).toEqual([
      ['/VolumeDriver.Create', { Name: 'vol-1', Opts: { source: 'nfs://server/share', uid: '2000' } }],
      ['/VolumeDriver.Mount', { Name: 'vol-1' }],
      ['/VolumeDriver.Unmount', { Name: 'vol-1' }],
    ]);
    expect(d.mounts.size).toBe(0);
  });

  it('fails with a SafeError when the driver says so, and with a plain error otherwise', async () => {
    const paths = path.join(dir, 'drivers');
    const d = await driver(paths, 'nfs');
    const m = manager([paths]);
    await m.discover();

    d.failNext('/VolumeDriver.Mount', JSON.stringify({ SafeDescription: 'share nfs://server/x is not exported' }));
    const safe = await failure(() => m.mount('nfs', 'vol-1', 'c1'));
    expect(safe).toBeInstanceOf(VolumeDriverError);
    expect(safe.safeDescription).toBe('share nfs://server/x is not exported');

    d.failNext('/VolumeDriver.Mount', 'mount.nfs: access denied by server (10.0.0.5:/secret)');
    const plain = await failure(() => m.mount('nfs', 'vol-1', 'c1'));
    expect(plain.safeDescription).toBeUndefined();
    expect(plain.message).toContain('access denied by server');

    // volman: a Create failure is never safe, even when its text is JSON.
    d.failNext('/VolumeDriver.Create', JSON.stringify({ SafeDescription: 'nope' }));
    expect((await failure(() => m.mount('nfs', 'vol-1', 'c1'))).safeDescription).toBeUndefined();

    // A Mountpoint that is not an absolute path is refused, and given back to the driver.
    d.answerNext('/VolumeDriver.Mount', { Err: '', Mountpoint: 'relative/dir' });
    expect((await failure(() => m.mount('nfs', 'vol-1', 'c1'))).message).toContain('no absolute Mountpoint');
    expect(bodiesOf(d).at(-1)).toEqual(['/VolumeDriver.Unmount', { Name: 'vol-1' }]);
    expect(d.mounts.size).toBe(0);

    // An answer that is not JSON.
    d.answerNext('/VolumeDriver.Mount', 'not json');
    // (answerNext sends the body JSON-encoded: a JSON string, which is not an object)
    expect((await failure(() => m.mount('nfs', 'vol-1', 'c1'))).message).toContain('not a JSON object');

    const unknown = await failure(() => m.mount('smb', 'vol-1', 'c1'));
    expect(unknown.message).toBe("volume driver 'smb' not found (this cell has nfs)");
    expect(unknown.safeDescription).toBeUndefined();
  });

  it('mounts a shared volume for two containers: the calls for it go one at a time, and one unmount leaves the other mounted', async () => {
    const paths = path.join(dir, 'drivers');
    const d = await driver(paths, 'nfs');
    const m = manager([paths]);
    await m.discover();
    d.delay.set('/VolumeDriver.Mount', 100);
    d.delay.set('/VolumeDriver.Unmount', 100);
    const [a, b] = await Promise.all([m.mount('nfs', 'shared', 'c1'), m.mount('nfs', 'shared', 'c2')]);
    expect(a).toBe(b);
    expect(d.mounts.get('shared')).toBe(2);
    await writeFile(path.join(a, 'data'), 'written by c1');
    // An unmount and a new mount of the same volume at once: the driver sees them in order, one at a time.
    await Promise.all([m.unmount('nfs', 'shared', 'c1'), m.mount('nfs', 'shared', 'c3')]);
    expect(d.mounts.get('shared')).toBe(2);
    expect(d.maxConcurrentPerVolume).toBe(1);
    await m.unmount('nfs', 'shared', 'c2');
    expect(d.mounts.get('shared')).toBe(1);
    await m.unmount('nfs', 'shared', 'c3');
    expect(d.mounts.has('shared')).toBe(false);
  });

  it('gives each container its own volume name with UniqueVolumeIds', async () => {
    const paths = path.join(dir, 'drivers');
    await mkdir(paths);
    const d = await driver();
    await writeFile(path.join(paths, 'u.json'), JSON.stringify({ Addr: d.url, UniqueVolumeIds: true }));
    const m = manager([paths]);
    await m.discover();
    expect(await m.mount('u', 'vol_1', 'c_1')).toBe(d.dirOf('vol=1_c=1'));
    expect(await m.mount('u', 'vol_1', 'c2')).toBe(d.dirOf('vol=1_c2'));
    await m.unmount('u', 'vol_1', 'c_1');
    expect([...d.mounts.keys()]).toEqual(['vol=1_c2']);
  });

  it('talks to an https driver with the TLSConfig of its .json (CA, client certificate)', async () => {
    const ca = await createCA();
    const server = await issueCert(ca, { commonName: 'driver', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const client = await issueCert(ca, { commonName: 'cell', usage: 'client' });
    const certs = path.join(dir, 'certs');
    const c = await writeCertFiles(certs, 'client', client);
    await writeFile(path.join(certs, 'ca.crt'), ca.certPem);
    const d = await startFakeVolumeDriver({ root: path.join(dir, 'tls-volumes'), tls: { ...server, ca: ca.certPem } });
    drivers.push(d);
    const paths = path.join(dir, 'drivers');
    await mkdir(paths);
    const tlsConfig = { CAFile: path.join(certs, 'ca.crt'), CertFile: c.certPath, KeyFile: c.keyPath };
    await writeFile(path.join(paths, 'secure.json'), JSON.stringify({ Addr: d.url, TLSConfig: tlsConfig }));
    // Without the client certificate the driver refuses the connection: not discovered.
    await writeFile(
      path.join(paths, 'anonymous.json'),
      JSON.stringify({ Addr: d.url, TLSConfig: { CAFile: path.join(certs, 'ca.crt') } }),
    );
    const m = manager([paths]);
    expect(await m.discover()).toEqual(['secure']);
    expect(await m.mount('secure', 'v', 'c')).toBe(d.dirOf('v'));
    await m.unmount('secure', 'v', 'c');
  });
});
