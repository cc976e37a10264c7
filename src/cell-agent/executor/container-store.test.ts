import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCA } from '../../lib/certs.ts';
import { ProcessBackend } from '../backends/process.ts';
import { failure, loopback, type Loopback } from '../testing.ts';
import {
  C2C_TLS_PORT,
  ContainerCreateError,
  ContainerStore,
  proxyPorts,
  safeRelativePath,
  withDefaults,
  hideHostPaths,
  type ContainerRequest,
} from './container-store.ts';
import { DownloadCache } from './download-cache.ts';
import { Downloader } from './downloader.ts';
import { InstanceIdentity } from './identity.ts';
import { LogStreamer, type LogMessage } from './log.ts';

let dir: string;
let server: Loopback;
let backend: ProcessBackend;
let logs: LogMessage[];
const log = () => new LogStreamer((m) => logs.push(m));
const signal = () => new AbortController().signal;
let counter = 0;
let tgz: Buffer;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'store-'));
  logs = [];
  const src = path.join(dir, 'lifecycle');
  await mkdir(src);
  await writeFile(path.join(src, 'launcher'), '#!/bin/sh\necho launched\n', { mode: 0o755 });
  tgz = execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, '.']);
  server = await loopback((req, res) => {
    if (req.url !== '/lifecycle.tgz') return void res.writeHead(404).end();
    if (req.headers['if-none-match'] === '"l1"') return void res.writeHead(304).end();
    res.writeHead(200, { ETag: '"l1"' }).end(tgz);
  });
  backend = new ProcessBackend({ baseDir: path.join(dir, 'containers') });
});

afterEach(async () => {
  for (const h of await backend.list()) await backend.destroy(h);
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const request = (extra: Partial<ContainerRequest> = {}): ContainerRequest => ({
  handle: `c-${process.pid}-${++counter}`,
  properties: {},
  env: [{ name: 'A', value: '1' }],
  limits: {},
  ports: [],
  ...extra,
});

describe('container store', () => {
  it('mounts cached dependencies read-only from the cell cache and logs their download as Diego does', async () => {
    const cache = new DownloadCache({ dir: path.join(dir, 'cache') });
    await cache.open();
    const store = new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), cache });
    const dep = { name: 'lifecycle', from: server.url('/lifecycle.tgz'), to: '/tmp/lifecycle', cacheKey: 'lc' };
    const a = await store.create(request({ cachedDependencies: [dep] }), log(), signal());
    const b = await store.create(request({ cachedDependencies: [dep] }), log(), signal());
    const root = (h: string) => path.join(dir, 'containers', h);
    expect(execFileSync(path.join(root(a.container.handle), 'tmp/lifecycle/launcher')).toString()).toBe('launched\n');
    expect(execFileSync(path.join(root(b.container.handle), 'tmp/lifecycle/launcher')).toString()).toBe('launched\n');
    expect(logs.map((m) => m.line)).toEqual([
      'Downloading lifecycle...',
      expect.stringMatching(/^Downloaded lifecycle \(\d+(\.\d+)?[KB]+\)$/),
      'Downloading lifecycle...',
      'Downloaded lifecycle', // warm: revalidated, not transferred
    ]);
    await store.destroy(a.container.handle);
    await store.destroy(b.container.handle);
    expect(cache.usedBytes()).toBeGreaterThan(0); // stays cached for the next container
  });

  it('fails with "failed to download cached artifacts" (retryable) and leaves nothing behind', async () => {
    const cache = new DownloadCache({ dir: path.join(dir, 'cache'), downloader: new Downloader({ retryWaitMs: 5 }) });
    await cache.open();
    const store = new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), cache });
    const req = request({
      cachedDependencies: [{ name: 'gone', from: server.url('/missing.tgz'), to: '/x', cacheKey: 'gone' }],
    });
    const err = await failure(() => store.create(req, log(), signal()));
    expect(err).toBeInstanceOf(ContainerCreateError);
    expect(err).toMatchObject({ reason: 'failed to download cached artifacts', retryable: true });
    expect(logs.map((m) => m.line)).toEqual(['Downloading gone...', 'Downloading gone failed']);
    expect(await backend.list()).toEqual([]);
  });

  it('writes volume-mounted files under /etc/cf-service-bindings and the identity under /etc/cf-instance-credentials', async () => {
    const ca = await createCA();
    const identity = new InstanceIdentity({ ca, dir: path.join(dir, 'creds') });
    const trusted = path.join(dir, 'trusted');
    await mkdir(trusted);
    await writeFile(path.join(trusted, 'ca.crt'), ca.certPem);
    const store = new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), identity, trustedCertsDir: trusted });
    const { container } = await store.create(
      request({
        guid: 'instance-guid-1',
        organizationalUnits: ['app:a'],
        volumeMountedFiles: [
          { path: '/mysql/uri', content: 'mysql://db' },
          { path: 'redis/password', content: 's3cret' },
        ],
        trustedSystemCertificatesPath: '/etc/cf-system-certificates',
      }),
      log(),
      signal(),
    );
    const root = path.join(dir, 'containers', container.handle);
    expect(await readFile(path.join(root, 'etc/cf-service-bindings/mysql/uri'), 'utf8')).toBe('mysql://db');
    expect(await readFile(path.join(root, 'etc/cf-service-bindings/redis/password'), 'utf8')).toBe('s3cret');
    expect(await readFile(path.join(root, 'etc/cf-system-certificates/ca.crt'), 'utf8')).toBe(ca.certPem);
    const cert = new X509Certificate(await readFile(path.join(root, 'etc/cf-instance-credentials/instance.crt')));
    expect(cert.subject).toBe('OU=app:a\nCN=instance-guid-1');
    expect(cert.subjectAltName).toBe('DNS:instance-guid-1, IP Address:127.0.0.1');
    await store.destroy(container.handle);
    expect(await readdir(path.join(dir, 'creds'))).toEqual([]);
    expect(existsSync(path.join(dir, 'exec', 'service-bindings', container.handle))).toBe(false);
  });

  it('refuses a volume-mounted file path that would leave its directory', () => {
    expect(() => safeRelativePath('../../etc/passwd')).toThrow(/must name a file/);
    expect(() => safeRelativePath('a/../../b')).toThrow(/must name a file/);
    expect(() => safeRelativePath('/')).toThrow(/must name a file/);
    expect(safeRelativePath('/svc/./file')).toBe('svc/file');
  });

  it("gives app port i the proxy port 61001+i and port 8080 also 61443, as Diego's ProxyPorts", () => {
    expect(proxyPorts([8080, 9090])).toEqual([
      { appPort: 8080, proxyPort: 61001 },
      { appPort: 8080, proxyPort: C2C_TLS_PORT },
      { appPort: 9090, proxyPort: 61002 },
    ]);
    expect(proxyPorts([61001, 5000])).toEqual([
      { appPort: 61001, proxyPort: 61002 },
      { appPort: 5000, proxyPort: 61003 },
    ]);
    expect(() => proxyPorts([61443])).toThrow(/reserved/);
  });

  it('reports the network run steps export: the cell address, the container address, mapped ports', async () => {
    const store = new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), externalIp: '192.0.2.10' });
    const { network } = await store.create(request({ ports: [8080] }), log(), signal());
    expect(network).toMatchObject({ externalIp: '192.0.2.10', internalIp: '192.0.2.10' });
    expect(network.ports).toEqual([{ containerPort: 8080, hostPort: expect.any(Number) as number }]);
  });

  it('adds the layer of a preloaded+layer rootfs (checked against its digest) before anything runs', async () => {
    const cache = new DownloadCache({ dir: path.join(dir, 'cache') });
    await cache.open();
    const store = new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), cache });
    const digest = createHash('sha256').update(tgz).digest('hex');
    const rootfs = (d: string) =>
      `preloaded+layer:busybox?layer=${encodeURIComponent(server.url('/lifecycle.tgz'))}&layer_path=%2Fhome%2Fvcap&layer_digest=${d}`;
    const { container } = await store.create(request({ rootfs: rootfs(digest) }), log(), signal());
    const launcher = path.join(dir, 'containers', container.handle, 'home/vcap/launcher');
    expect(execFileSync(launcher).toString()).toBe('launched\n');
    const err = await failure(() => store.create(request({ rootfs: rootfs('0'.repeat(64)) }), log(), signal()));
    expect(err).toMatchObject({
      reason: expect.stringMatching(
        /^failed to create container: adding the rootfs layer failed: Checksum failed/,
      ) as string,
    });
  });

  it('asks for the image credentials just before the backend creates (and pulls); a failure leaves nothing', async () => {
    const seen: unknown[] = [];
    const spying = Object.assign(Object.create(backend) as ProcessBackend, {
      create: (spec: Parameters<ProcessBackend['create']>[0]) => {
        seen.push(spec.imageCredentials);
        return backend.create(spec);
      },
    });
    const identity = new InstanceIdentity({ ca: await createCA(), dir: path.join(dir, 'identity') });
    const store = new ContainerStore({ backend: spying, stateDir: path.join(dir, 'exec'), identity });
    let asked = 0;
    const creds = { username: 'deploy', password: 'hunter2' };
    await store.create(
      request({
        volumeMountedFiles: [{ path: 'a/b', content: 'c' }],
        imageCredentials: () => Promise.resolve((asked++, creds)),
      }),
      log(),
      signal(),
    );
    expect({ asked, seen }).toEqual({ asked: 1, seen: [creds] });
    // The controller refused or did not answer: retryable (a task may go elsewhere), nothing left on the cell.
    const before = await readdir(path.join(dir, 'identity')).catch(() => []);
    const err = await failure(() =>
      store.create(
        request({
          volumeMountedFiles: [{ path: 'a/b', content: 'c' }],
          imageCredentials: () => Promise.reject(new Error('the controller refused: [credentials.placed] ...')),
        }),
        log(),
        signal(),
      ),
    );
    expect(err).toMatchObject({
      reason:
        'failed to create container: getting the image credentials failed: the controller refused: [credentials.placed] ...',
      retryable: true,
    });
    expect(seen).toHaveLength(1);
    expect(await backend.list()).toHaveLength(1); // the first container only
    expect(await readdir(path.join(dir, 'identity')).catch(() => [])).toEqual(before);
  });

  it("hands the work's egress rules to the backend, and refuses a container whose rules are invalid", async () => {
    const specs: unknown[] = [];
    const spying = Object.assign(Object.create(backend) as ProcessBackend, {
      create: (spec: Parameters<ProcessBackend['create']>[0]) => {
        specs.push(spec.egress);
        return backend.create(spec);
      },
    });
    const store = new ContainerStore({ backend: spying, stateDir: path.join(dir, 'exec') });
    await store.create(
      request({ egressRules: [{ protocol: 'tcp', destinations: ['10.0.0.0/8'], ports: [443] }] }),
      log(),
      signal(),
    );
    expect(specs).toEqual([
      [
        {
          protocol: 'tcp',
          networks: [{ start: '10.0.0.0', end: '10.255.255.255' }],
          ports: [{ start: 443, end: 443 }],
        },
      ],
    ]);
    const err = await failure(() =>
      store.create(
        request({ egressRules: [{ protocol: 'tcp', destinations: ['not-an-ip'], ports: [1] }] }),
        log(),
        signal(),
      ),
    );
    expect(err).toMatchObject({
      reason: expect.stringMatching(/^failed to create container: invalid egress rule: egressRules\[0\]/) as string,
    });
  });

  it("gives a container the cell's default limits for what its work leaves unlimited", () => {
    expect(
      withDefaults(
        { memoryMb: 0, pids: undefined, diskMb: 512, cpuWeight: 10 },
        { memoryMb: 1024, pids: 1024, diskMb: 2048 },
      ),
    ).toEqual({
      memoryMb: 1024,
      pids: 1024,
      diskMb: 512,
      cpuWeight: 10,
    });
    expect(withDefaults({ memoryMb: 0 }, undefined)).toEqual({ memoryMb: 0, diskMb: undefined, pids: undefined });
  });

  it("never shows the cell's own directories in a reason", () => {
    expect(
      hideHostPaths('creating bundle /var/lib/diego-cell/bundles/abc: EEXIST (see /tmp/x)', [
        '/var/lib/diego-cell/',
        '/tmp',
      ]),
    ).toBe('creating bundle <cell>/bundles/abc: EEXIST (see <cell>/x)');
  });
});
