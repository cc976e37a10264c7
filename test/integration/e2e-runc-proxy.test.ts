// The container proxy end to end: a rep with a runc cell (CNI networking), the instance identity CA and the
// socat container proxy; the RUNNING instance advertises its TLS proxy ports and answers TLS on the host one with
// its identity certificate, before and after an agent restart; nothing is left once the app is deleted.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceIdentity } from '../../src/cell-agent/executor/identity.ts';
import { SocatProxyRunner } from '../../src/cell-agent/executor/proxy.ts';
import type { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { createCA, type CertKeyPair } from '../../src/lib/certs.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { deleteLink, runcBackend, testRep } from '../support/runc-cell.ts';

const env = useDiego('proxy', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-proxy-'));
const prefix = `prx${process.pid}-`;
const bridge = `dprx${process.pid % 10000}`;
let ca: CertKeyPair;
let rep: Rep | undefined;
const runners: SocatProxyRunner[] = [];

/** A cell agent on this file's state: a new backend, identity and proxy runner each time (as after a restart). */
function cellRep(): Rep {
  const proxy = new SocatProxyRunner({ stateDir: path.join(dir, 'proxy'), checkIntervalMs: 500 });
  runners.push(proxy);
  const backend = runcBackend({
    stateDir: path.join(dir, 'state'),
    idPrefix: prefix,
    networkName: `prx-${process.pid}`,
    bridge,
    subnet: 224,
    ipamDataDir: path.join(dir, 'ipam'),
  });
  return testRep(env, backend, {
    cellId: `proxy-cell-${process.pid}`,
    executor: {
      stateDir: path.join(dir, 'executor'),
      identity: new InstanceIdentity({ ca, dir: path.join(dir, 'credentials') }),
      proxy,
    },
  });
}

beforeAll(async () => {
  ca = await createCA({ commonName: 'proxy e2e identity CA' });
  rep = cellRep();
  await rep.start();
}, 120_000);

afterAll(async () => {
  await rep?.stop();
  for (const r of runners) r.close();
  deleteLink(bridge);
  rmSync(dir, { recursive: true, force: true });
});

const ours = () =>
  execFileSync('runc', ['--root', path.join(dir, 'state', 'runc'), 'list', '-q'], { encoding: 'utf8' })
    .split('\n')
    .filter((id) => id.startsWith(prefix));

/** Live socat processes serving this file's containers (their command lines name our credentials files). */
const socats = () =>
  readdirSync('/proc').filter((e) => {
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const state = readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1]?.[0];
      return path.basename(argv[0] ?? '') === 'socat' && argv.join(' ').includes(dir) && state !== 'Z';
    } catch {
      return false;
    }
  });

/** GET / over TLS, verified against the identity CA for `servername`: the body and the certificate's CN. */
function tlsGet(port: number, servername: string): Promise<{ body?: string; cn?: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    let cn: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: ca.certPem }, () => {
      const name = socket.getPeerCertificate().subject?.CN;
      cn = Array.isArray(name) ? name[0] : name;
      socket.write('GET / HTTP/1.0\r\n\r\n');
    });
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 10_000);
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (err) => {
      clearTimeout(timer);
      resolve({ error: err.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const i = data.indexOf('\r\n\r\n');
      resolve(i >= 0 ? { body: data.slice(i + 4), cn } : { error: 'no answer' });
    });
  });
}

const instance = async (): Promise<IActualLRP | undefined> =>
  (await client.list('ActualLRP', { namespace: env.ns }))[0];

describe('container proxy through the rep (runc)', () => {
  it('advertises the TLS proxy ports of a RUNNING instance, serves TLS there across an agent restart, leaves nothing', async () => {
    await client.create('DesiredLRP', {
      metadata: { name: 'web', namespace: env.ns },
      spec: {
        processGuid: 'web',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 64,
        ports: [8080],
        setup: { run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && echo tls > /www/index.html'], user: 'root' } },
        action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
        checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
      },
    });
    const running = await eventually(async () => {
      const a = await instance();
      expect(a?.status?.state).toBe('RUNNING');
      return a!;
    }, 60_000);
    const guid = running.status!.instanceGuid!;
    const ports = running.status!.netInfo!.ports!;
    expect(ports).toEqual([
      {
        containerPort: 8080,
        hostPort: expect.any(Number),
        containerTlsProxyPort: 61001,
        hostTlsProxyPort: expect.any(Number),
      },
      { containerPort: 8080, hostPort: expect.any(Number), containerTlsProxyPort: 61443 }, // container to container only
    ]);
    const hostTls = ports[0]!.hostTlsProxyPort!;
    expect(await tlsGet(hostTls, guid)).toEqual({ body: 'tls\n', cn: guid });

    // The agent restarts: the next one adopts the instance and its proxy.
    await rep!.stop({ leaveContainers: true });
    runners.at(-1)!.close(); // its periodic check would have died with the agent's process
    rep = cellRep();
    await rep.start();
    await eventually(async () => expect(await tlsGet(hostTls, guid)).toEqual({ body: 'tls\n', cn: guid }), 30_000);
    const after = await instance();
    expect(after?.status).toMatchObject({ state: 'RUNNING', instanceGuid: guid });

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instance()).toBeUndefined(), 30_000);
    await eventually(() => expect(ours()).toEqual([]), 30_000);
    await eventually(() => expect(socats()).toEqual([]), 30_000);
    expect(existsSync(path.join(dir, 'proxy', `${guid}.json`))).toBe(false);
  }, 180_000);
});
