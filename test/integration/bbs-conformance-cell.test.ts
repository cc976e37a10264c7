// What a BBS client asks of a cell actually happens in the container: Diego's own Go client
// (test/bbs-conformance, scenario "cell") desires apps and a task through the facade, and a runc cell on this
// machine runs them on the cflinuxfs4 stack (a Debian rootfs): the app's lifecycle arrives as a cached dependency
// served by an HTTP/1.0 server, the droplet by a download into "." (the user's home), a sidecar runs beside it,
// and the app publishes its environment, identity certificate, service binding and trusted certificates, which
// the Go side checks. Then the same app once more through kubectl, as a Kubernetes user writes it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBbsApp } from '../../src/bbs/app.ts';
import { CachedDiegoClient } from '../../src/bbs/cached-client.ts';
import { DownloadCache } from '../../src/cell-agent/executor/download-cache.ts';
import { InstanceIdentity } from '../../src/cell-agent/executor/identity.ts';
import type { Rep } from '../../src/cell-agent/rep.ts';
import { createCA, writeCertFiles } from '../../src/lib/certs.ts';
import { eventually } from '../support/eventually.ts';
import { runBbsClient } from '../support/bbs-go.ts';
import { useDiego } from '../support/fixture.ts';
import { kubectl } from '../support/kube.ts';
import { deleteLink, runcBackend, testRep } from '../support/runc-cell.ts';

const env = useDiego('bbs-cell', { convergeIntervalMs: 2000 });
const dir = mkdtempSync(path.join(tmpdir(), 'diego-bbs-cell-'));
const bridge = `dbc${process.pid % 10000}`;
const cellId = `bbs-cell-${process.pid}`;
let rep: Rep;
let app: ReturnType<typeof buildBbsApp>;
let reads: CachedDiegoClient | undefined;
let bbsUrl = '';
let files: Http10Server;
let caFile = '';

/** A file server that speaks HTTP/1.0 only: no Content-Length, the body ends when it closes the connection. */
interface Http10Server {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

function http10(bodies: Record<string, Buffer>, lastModified: string): Promise<Http10Server> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let head = '';
    sock.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const [line = ''] = head.split('\r\n');
      const file = line.split(' ')[1] ?? '';
      const conditional = /if-modified-since: (.+)\r\n/i.exec(head)?.[1];
      requests.push(`${conditional ? 'revalidate' : 'get'} ${file}`);
      const body = bodies[file];
      if (!body) return void sock.end('HTTP/1.0 404 Not Found\r\n\r\n');
      if (conditional === lastModified) return void sock.end('HTTP/1.0 304 Not Modified\r\n\r\n');
      sock.write(`HTTP/1.0 200 OK\r\nContent-Type: application/gzip\r\nLast-Modified: ${lastModified}\r\n\r\n`);
      // The truncated archive: half of a real one, then the server closes as if it were all.
      sock.end(file === '/truncated.tgz' ? body.subarray(0, body.length >> 1) : body);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    ),
  );
}

/** The app's "lifecycle" (a busybox and a launcher, as a buildpack lifecycle brings its binaries) and its droplet. */
function buildArtifacts(): Record<string, Buffer> {
  const lifecycle = path.join(dir, 'lifecycle');
  mkdirSync(lifecycle, { recursive: true });
  execFileSync('cp', ['/bin/busybox', path.join(lifecycle, 'busybox')]);
  writeFileSync(
    path.join(lifecycle, 'launcher'),
    [
      '#!/bin/sh',
      'set -e',
      'mkdir -p "$HOME/www"',
      'env > "$HOME/www/env.txt"',
      'cat "$CF_INSTANCE_CERT" > "$HOME/www/cert.pem"',
      'cat /etc/cf-service-bindings/db/uri > "$HOME/www/binding.txt"; echo >> "$HOME/www/binding.txt"',
      'ls "$CF_SYSTEM_CERT_PATH" > "$HOME/www/trusted.txt"',
      'cp "$HOME/index.html" "$HOME/www/index.html"',
      'exec /tmp/lifecycle/busybox httpd -f -p 8080 -h "$HOME/www"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const droplet = path.join(dir, 'droplet');
  mkdirSync(droplet, { recursive: true });
  writeFileSync(path.join(droplet, 'index.html'), 'droplet ok\n');
  const tgz = (src: string) => execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, '.']);
  const lifecycleTgz = tgz(lifecycle);
  return { '/lifecycle.tgz': lifecycleTgz, '/droplet.tgz': tgz(droplet), '/truncated.tgz': lifecycleTgz };
}

beforeAll(async () => {
  files = await http10(buildArtifacts(), 'Sat, 05 Dec 2026 12:00:00 GMT');
  const ca = await createCA({ commonName: 'bbs-cell instance identity CA' });
  caFile = (await writeCertFiles(path.join(dir, 'pki'), 'ca', ca)).certPath;
  const trusted = path.join(dir, 'trusted');
  await writeCertFiles(trusted, 'platform-ca', ca);
  const cache = new DownloadCache({ dir: path.join(dir, 'cache') });
  await cache.open();
  rep = testRep(
    env,
    runcBackend({
      stateDir: path.join(dir, 'state'),
      idPrefix: `bc${process.pid}-`,
      networkName: `bbs-cell-${process.pid}`,
      bridge,
      subnet: 234,
      ipamDataDir: path.join(dir, 'ipam'),
      stacks: { cflinuxfs4: 'debian', busybox: 'busybox' },
    }),
    {
      cellId,
      stacks: ['cflinuxfs4', 'busybox'],
      livenessIntervalMs: 1000,
      executor: {
        stateDir: path.join(dir, 'executor'),
        cache,
        identity: new InstanceIdentity({ ca, dir: path.join(dir, 'credentials') }),
        trustedCertsDir: trusted,
      },
    },
  );
  await rep.start();
  // As `diego-operator bbs` runs it: reads from informer caches, consistent with its own writes.
  reads = new CachedDiegoClient(env.client.kc, { namespace: env.ns, log: env.log });
  await reads.start();
  app = buildBbsApp({ client: reads, namespace: env.ns, systemNamespace: env.systemNamespace, logger: env.log });
  await app.listen({ host: '127.0.0.1', port: 0 });
  bbsUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}, 600_000); // a cold machine builds the cflinuxfs4 rootfs once (about a minute)

afterAll(async () => {
  await app?.close();
  await reads?.stop();
  await rep?.stop();
  await files?.close();
  deleteLink(bridge);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const STEPS = [
  'cell-app-running',
  'cell-app-environment-0',
  'cell-app-identity-0',
  'cell-app-files-0',
  'cell-app-environment-1',
  'cell-app-identity-1',
  'cell-app-files-1',
  'cell-daemon',
  'cell-sidecar-crash',
  'cell-broken-download',
  'cell-task',
  'cell-cleanup',
];

describe("Diego's Go BBS client against a real cell", () => {
  it(
    'runs apps as Cloud Controller sends them: cached lifecycle, relative droplet download, sidecar, identity, environment',
    { timeout: 900_000 },
    async () => {
      const res = await runBbsClient(
        ['-scenario', 'cell', '-url', bbsUrl, '-cell', cellId, '-files', files.url, '-ca', caFile],
        880_000,
      );
      expect({ code: res.code, ok: res.ok }, res.stderr.slice(-4000)).toEqual({ code: 0, ok: STEPS });
      // The lifecycle was fetched once and then revalidated (If-Modified-Since → 304), not fetched per container.
      expect(files.requests.filter((r) => r === 'get /lifecycle.tgz')).toHaveLength(1);
      expect(files.requests.filter((r) => r === 'revalidate /lifecycle.tgz').length).toBeGreaterThanOrEqual(2);
    },
  );

  it('runs the same kind of app applied with kubectl', { timeout: 300_000 }, async () => {
    const manifest = {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'DesiredLRP',
      metadata: { name: 'kubectl-app', namespace: env.ns },
      spec: {
        processGuid: `kubectl-app-${process.pid}`,
        domain: 'cf-apps',
        rootFs: 'preloaded:cflinuxfs4',
        instances: 1,
        memoryMb: 128,
        diskMb: 256,
        ports: [8080],
        cachedDependencies: [
          {
            name: 'lifecycle',
            from: `${files.url}/lifecycle.tgz`,
            to: '/tmp/lifecycle',
            cacheKey: 'kubectl-lifecycle',
          },
        ],
        setup: { download: { from: `${files.url}/droplet.tgz`, to: '.', user: 'vcap' } },
        action: { run: { path: '/tmp/lifecycle/launcher', user: 'vcap' } },
        sidecars: [{ action: { run: { path: '/bin/sleep', args: ['100000'], user: 'vcap' } }, memoryMb: 16 }],
        checkDefinition: { checks: [{ tcpCheck: { port: 8080 } }] },
        certificateProperties: { organizationalUnit: ['app:kubectl-app'] },
        volumeMountedFiles: [{ path: 'db/uri', content: 'from-kubectl' }],
        trustedSystemCertificatesPath: '/etc/cf-system-certificates',
      },
    };
    const applied = await kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
    expect(applied, applied.stderr).toMatchObject({ code: 0 });
    const running = await eventually(async () => {
      const list = await env.client.list('ActualLRP', { namespace: env.ns });
      const a = list.find((x) => x.spec.processGuid === manifest.spec.processGuid && x.status?.state === 'RUNNING');
      expect(a).toBeDefined();
      return a!;
    }, 180_000);
    const port = running.status?.netInfo?.ports?.find((p) => p.containerPort === 8080)?.hostPort;
    const text = await (await fetch(`http://127.0.0.1:${port}/env.txt`)).text();
    expect(text).toContain(`CF_INSTANCE_GUID=${running.status?.instanceGuid}`);
    expect(text).toContain('CF_INSTANCE_INDEX=0');
    expect(await (await fetch(`http://127.0.0.1:${port}/binding.txt`)).text()).toBe('from-kubectl\n');
    expect(await (await fetch(`http://127.0.0.1:${port}/index.html`)).text()).toBe('droplet ok\n');
    // Refused at admission with the field named: a relative mount point and a path out of the bindings directory.
    const bad = JSON.parse(JSON.stringify(manifest)) as typeof manifest;
    bad.metadata.name = 'kubectl-bad';
    bad.spec.processGuid = `kubectl-bad-${process.pid}`;
    bad.spec.cachedDependencies[0]!.to = 'relative';
    bad.spec.volumeMountedFiles[0]!.path = '../../etc/passwd';
    const refused = await kubectl(['apply', '-f', '-'], JSON.stringify(bad));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('spec.cachedDependencies[0].to: must be an absolute path');
    expect(refused.stderr).toContain("spec.volumeMountedFiles[0].path: must not contain '..'");
  });
});
