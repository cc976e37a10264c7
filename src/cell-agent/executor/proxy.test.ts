// The container proxy with real containers: runc with CNI networking (socat in the container's network
// namespace) and the process backend (socat on the host). Needs root, runc, busybox-static, socat and the CNI
// plugins (hack/install-deps.sh installs them). Loopback and the test's own bridge only.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCA, issueCert, type CertKeyPair } from '../../lib/certs.ts';
import { ProcessBackend } from '../backends/process.ts';
import { ensureBusyboxRootfs } from '../backends/rootfs.ts';
import { RuncBackend } from '../backends/runc.ts';
import { collect, tarOf } from '../backends/testing.ts';
import type { Container, ContainerBackend } from '../backends/types.ts';
import { C2C_TLS_PORT, ContainerStore, proxyPorts, type ContainerRequest } from './container-store.ts';
import { InstanceIdentity } from './identity.ts';
import { LogStreamer } from './log.ts';
import { PROXY_CIPHERS, PROXY_FAILED_TO_START, SocatProxyRunner, type SocatProxyOptions } from './proxy.ts';

let dir: string;
let ca: CertKeyPair;
let clientCA: CertKeyPair;
let clientCert: CertKeyPair;
let strangerCert: CertKeyPair;
const bridge = `dpx${process.pid % 1_000_000}`;
const prefix = `px${process.pid}-`;
let counter = 0;
const runners: SocatProxyRunner[] = [];
const backends: ContainerBackend[] = [];

const runcBackend = () =>
  new RuncBackend({
    stateDir: path.join(dir, 'runc'),
    idPrefix: prefix,
    outputDrainMs: 100,
    network: {
      networkName: `dpx-${process.pid}`,
      bridge,
      subnet: `10.225.${process.pid % 250}.0/24`,
      ipamDataDir: path.join(dir, 'ipam'),
    },
  });

/** One agent's executor: an identity (same CA and directory for every agent), a proxy runner and the store. */
function agent(backend: ContainerBackend, o: Partial<SocatProxyOptions> = {}) {
  const identity = new InstanceIdentity({ ca, dir: path.join(dir, 'credentials') });
  const proxy = new SocatProxyRunner({ stateDir: path.join(dir, 'proxy'), checkIntervalMs: 200, ...o });
  runners.push(proxy);
  backends.push(backend);
  return { identity, proxy, store: new ContainerStore({ backend, stateDir: path.join(dir, 'exec'), identity, proxy }) };
}

const request = (): ContainerRequest => ({
  handle: `h${++counter}`,
  guid: `instance-${process.pid}-${counter}`,
  properties: {},
  env: [],
  limits: {},
  ports: [8080],
  enableContainerProxy: true,
});

const signal = () => new AbortController().signal;
const log = () => new LogStreamer(() => undefined);

/**
 * busybox httpd answering `text` on 8080 at the container's address only (not on its loopback): the proxy dials
 * the app there, as Diego's Envoy does.
 */
async function serve(c: Container, text: string): Promise<void> {
  const { ip } = await c.info();
  await c.streamIn('/www', tarOf({ 'index.html': text }));
  await c.run({ path: 'httpd', args: ['-f', '-p', `${ip}:8080`, '-h', '/www'] }, collect());
}

interface TlsAnswer {
  body?: string;
  cn?: string;
  serial?: string;
  /** Protocol and cipher (OpenSSL's name) negotiated. */
  protocol?: string;
  cipher?: string;
  error?: string;
}

/**
 * A TLS connection verified against the identity CA for the container guid: `request()` sends a GET and
 * resolves with the answer (or the error). The request can be sent long after connecting.
 */
function tlsConnect(
  host: string,
  port: number,
  servername: string,
  client?: CertKeyPair,
  extra: tls.ConnectionOptions = {},
) {
  let cn: string | undefined;
  let serial: string | undefined;
  let protocol: string | undefined;
  let cipher: string | undefined;
  let data = '';
  const socket = tls.connect({
    host,
    port,
    servername,
    ca: ca.certPem,
    ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    ...extra,
  });
  const done = new Promise<TlsAnswer>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ error: 'timeout' });
    }, 15_000);
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (err) => {
      clearTimeout(timer);
      resolve({ error: err.message, cn });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const body = data.includes('\r\n\r\n') ? data.slice(data.indexOf('\r\n\r\n') + 4) : undefined;
      resolve({
        ...(body !== undefined ? { body } : { error: 'closed without an answer' }),
        cn,
        serial,
        protocol,
        cipher,
      });
    });
  });
  const connected = new Promise<void>((resolve) =>
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const name = peer.subject?.CN;
      cn = Array.isArray(name) ? name[0] : name;
      serial = peer.serialNumber;
      protocol = socket.getProtocol() ?? undefined;
      cipher = socket.getCipher().name;
      resolve();
    }),
  );
  return {
    connected: Promise.race([connected, done.then(() => undefined)]),
    request: () => {
      if (!socket.destroyed) socket.write('GET / HTTP/1.0\r\n\r\n');
      return done;
    },
  };
}

const tlsGet = (
  host: string,
  port: number,
  servername: string,
  client?: CertKeyPair,
  extra: tls.ConnectionOptions = {},
) => tlsConnect(host, port, servername, client, extra).request();

/** The socat processes serving containers of this test (their command lines name our credentials files). */
function socats(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        const state = readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1]?.[0];
        return path.basename(argv[0] ?? '') === 'socat' && argv.join(' ').includes(dir) && state !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until<T>(
  what: string,
  fn: () => T | false | undefined | Promise<T | false | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** containerTlsProxyPort → hostTlsProxyPort of a container's network info. */
const tlsPorts = (network: { ports: { containerTlsProxyPort?: number; hostTlsProxyPort?: number }[] }) =>
  Object.fromEntries(network.ports.map((p) => [p.containerTlsProxyPort, p.hostTlsProxyPort])) as Record<
    number,
    number | undefined
  >;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'proxy-'));
  ca = await createCA({ commonName: 'cell identity CA' });
  clientCA = await createCA({ commonName: 'router CA' });
  clientCert = await issueCert(clientCA, { commonName: 'gorouter', usage: 'client' });
  strangerCert = await issueCert(await createCA({ commonName: 'other CA' }), { commonName: 'x', usage: 'client' });
  await writeFile(path.join(dir, 'trusted.pem'), clientCA.certPem);
  await ensureBusyboxRootfs();
}, 120_000);

afterEach(async () => {
  for (const b of backends.splice(0)) for (const h of await b.list()) await b.destroy(h);
  for (const r of runners.splice(0)) r.close();
  for (const pid of socats()) process.kill(pid, 'SIGKILL');
});

afterAll(async () => {
  spawnSync('ip', ['link', 'delete', bridge]);
  await rm(dir, { recursive: true, force: true });
});

describe('container proxy with runc and CNI', () => {
  it(
    'terminates TLS with the instance identity on 61001 (host port) and 61443 (container address only)',
    { timeout: 60_000 },
    async () => {
      const { store } = agent(runcBackend());
      const req = request();
      const { container, network } = await store.create(req, log(), signal());
      await serve(container, 'hello over TLS');
      const ip = (await container.info()).ip!;
      expect(network.ports).toEqual([
        expect.objectContaining({ containerPort: 8080, containerTlsProxyPort: 61001 }),
        expect.objectContaining({ containerPort: 8080, containerTlsProxyPort: C2C_TLS_PORT, hostTlsProxyPort: 0 }),
      ]);
      const host = tlsPorts(network)[61001]!;
      expect(host).toBeGreaterThan(0);

      // The app is up once it answers in plain HTTP; then through the proxy, verified against the CA.
      const answer = await until('an answer through the proxy', async () => {
        const a = await tlsGet('127.0.0.1', host, req.guid!);
        return a.body !== undefined && a;
      });
      expect(answer).toMatchObject({ body: 'hello over TLS', cn: req.guid, protocol: 'TLSv1.3' });
      // TLS 1.2 with Diego's suites (for ECDSA keys) only.
      const v12 = await tlsGet('127.0.0.1', host, req.guid!, undefined, { maxVersion: 'TLSv1.2' });
      expect(v12).toMatchObject({ body: 'hello over TLS', protocol: 'TLSv1.2' });
      expect(PROXY_CIPHERS).toContain(v12.cipher);
      const weak = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' } as const;
      expect((await tlsGet('127.0.0.1', host, req.guid!, undefined, weak)).body).toBeUndefined();
      // Container to container: 61443 at the container's address, from another namespace (the host's).
      expect(await tlsGet(ip, C2C_TLS_PORT, req.guid!)).toMatchObject({ body: 'hello over TLS', cn: req.guid });
      expect((await container.info()).ports.map((p) => p.containerPort).sort((a, b) => a - b)).toEqual([8080, 61001]);
      // The proxy is not in the container: nothing there can see (or kill) it.
      const inside = collect();
      const ps = await container.run({ path: '/bin/sh', args: ['-c', 'ps -o comm'] }, inside);
      await ps.wait();
      expect(inside.out.join('\n')).not.toContain('socat');
      await until("the connections' children gone", () => socats().length === 2); // the two listeners

      await store.destroy(req.handle);
      expect(socats()).toEqual([]);
      expect(existsSync(path.join(dir, 'proxy', `${req.handle}.json`))).toBe(false);
    },
  );

  it(
    'requires a client certificate from the trusted CA on the proxy ports, not on 61443',
    { timeout: 60_000 },
    async () => {
      const { store } = agent(runcBackend(), {
        requireClientCerts: true,
        trustedCaFile: path.join(dir, 'trusted.pem'),
      });
      const req = request();
      const { container, network } = await store.create(req, log(), signal());
      await serve(container, 'mutual');
      const host = tlsPorts(network)[61001]!;
      const withCert = await until('an answer with a client certificate', async () => {
        const a = await tlsGet('127.0.0.1', host, req.guid!, clientCert);
        return a.body !== undefined && a;
      });
      expect(withCert.body).toBe('mutual');
      const without = await tlsGet('127.0.0.1', host, req.guid!);
      expect(without.body).toBeUndefined();
      expect(without.error).toBeDefined();
      expect((await tlsGet('127.0.0.1', host, req.guid!, strangerCert)).body).toBeUndefined();
      const ip = (await container.info()).ip!;
      expect((await tlsGet(ip, C2C_TLS_PORT, req.guid!)).body).toBe('mutual');
    },
  );

  it(
    'reloads a replaced certificate (socat loads it once) without dropping open connections',
    { timeout: 60_000 },
    async () => {
      // No periodic check: the test runs it.
      const { store, proxy, identity } = agent(runcBackend(), { checkIntervalMs: 3_600_000 });
      const req = request();
      const { container, network } = await store.create(req, log(), signal());
      await serve(container, 'rotating');
      const host = tlsPorts(network)[61001]!;
      const first = await until('an answer', async () => {
        const a = await tlsGet('127.0.0.1', host, req.guid!);
        return a.body !== undefined && a;
      });
      const open = tlsConnect('127.0.0.1', host, req.guid!);
      await open.connected;

      // Replaced as InstanceIdentity does it: write aside, then rename over.
      const next = await issueCert(ca, { commonName: req.guid!, dnsNames: [req.guid!], usage: 'both' });
      const creds = identity.dirOf(req.handle);
      await writeFile(path.join(creds, 'instance.key.tmp'), next.keyPem);
      await writeFile(path.join(creds, 'instance.crt.tmp'), next.certPem + ca.certPem);
      await rename(path.join(creds, 'instance.key.tmp'), path.join(creds, 'instance.key'));
      await rename(path.join(creds, 'instance.crt.tmp'), path.join(creds, 'instance.crt'));
      // socat with fork does not re-read it per connection...
      expect((await tlsGet('127.0.0.1', host, req.guid!)).serial).toBe(first.serial);
      // ... so the proxy reloads it.
      await proxy.check();
      const after = await tlsGet('127.0.0.1', host, req.guid!);
      expect(after).toMatchObject({ body: 'rotating', cn: req.guid });
      expect(after.serial).not.toBe(first.serial);
      expect(await open.request()).toMatchObject({ body: 'rotating', serial: first.serial });
      // One listener per port is left (the old ones ended with their connections).
      await until('the old listeners gone', () => socats().length === 2);
    },
  );

  it(
    'is adopted by a restarted agent: open connections live on, the re-issued certificate is served, a dead listener comes back',
    { timeout: 90_000 },
    async () => {
      const before = agent(runcBackend());
      const req = request();
      const { container, network } = await before.store.create(req, log(), signal());
      await serve(container, 'adopted');
      const host = tlsPorts(network)[61001]!;
      const first = await until('an answer', async () => {
        const a = await tlsGet('127.0.0.1', host, req.guid!);
        return a.body !== undefined && a;
      });
      const open = tlsConnect('127.0.0.1', host, req.guid!);
      await open.connected;
      // The agent goes away, leaving its containers; a new one starts on the same state.
      before.store.detachAll();
      before.proxy.close();

      const after = agent(runcBackend());
      const found = await after.store.lookup(req.handle);
      expect(found).toBeDefined();
      const adopted = await after.store.adopt(found!, req);
      expect(tlsPorts(adopted.network)[61001]).toBe(host);
      const again = await tlsGet('127.0.0.1', host, req.guid!);
      expect(again).toMatchObject({ body: 'adopted', cn: req.guid });
      expect(again.serial).not.toBe(first.serial); // adopt re-issued the certificate
      expect(await open.request()).toMatchObject({ body: 'adopted', serial: first.serial });

      // A listener that dies is started again by the periodic check.
      const record = JSON.parse(await readFile(path.join(dir, 'proxy', `${req.handle}.json`), 'utf8')) as {
        listeners: { proxyPort: number; pid: number }[];
      };
      process.kill(record.listeners.find((l) => l.proxyPort === 61001)!.pid, 'SIGKILL');
      await until('the listener back', async () => (await tlsGet('127.0.0.1', host, req.guid!)).body === 'adopted');

      await after.store.destroy(req.handle);
      expect(socats()).toEqual([]);
    },
  );

  it('keeps the listeners of the previous agent that serve the current certificate', { timeout: 60_000 }, async () => {
    const before = agent(runcBackend());
    const req = request();
    const { container } = await before.store.create(req, log(), signal());
    const pids = async () =>
      (
        JSON.parse(await readFile(path.join(dir, 'proxy', `${req.handle}.json`), 'utf8')) as {
          listeners: { pid: number }[];
        }
      ).listeners.map((l) => l.pid);
    const listeners = await pids();
    before.proxy.close();
    const next = new SocatProxyRunner({ stateDir: path.join(dir, 'proxy'), checkIntervalMs: 200 });
    runners.push(next);
    await next.adopt(req.handle, container, proxyPorts(req.ports), before.identity.dirOf(req.handle));
    expect(await pids()).toEqual(listeners);
    expect(socats().sort()).toEqual([...listeners].sort());
    await next.stop(req.handle);
    expect(socats()).toEqual([]);
  });

  it(
    'leaves nothing behind when the next agent destroys the container as an orphan (no stop)',
    { timeout: 60_000 },
    async () => {
      const killed = agent(runcBackend());
      const req = request();
      await killed.store.create(req, log(), signal());
      expect(socats().length).toBe(2);
      // kill -9: nothing is handed over; the next agent never adopts the container, bulk sync destroys it.
      killed.proxy.close();
      killed.identity.stopAll();
      const next = agent(runcBackend());
      await next.store.destroy(req.handle);
      await until('its proxy gone', () => socats().length === 0);
      await until('its record gone', () => !existsSync(path.join(dir, 'proxy', `${req.handle}.json`)));
    },
  );

  it(
    'fails the container with "instance proxy failed to start" when socat cannot run',
    { timeout: 60_000 },
    async () => {
      const backend = runcBackend();
      const { store } = agent(backend, { socat: path.join(dir, 'no-such-socat') });
      const req = request();
      await expect(store.create(req, log(), signal())).rejects.toThrow(PROXY_FAILED_TO_START);
      expect(await backend.list()).not.toContain(req.handle);
    },
  );
});

describe('container proxy on the host network (process backend)', () => {
  it('listens on the proxy port’s host port and forwards to the app’s host port; no 61443', async () => {
    const backend = new ProcessBackend({ baseDir: path.join(dir, 'containers') });
    const { store } = agent(backend);
    const req = request();
    const { container, network } = await store.create(req, log(), signal());
    await container.streamIn('/www', tarOf({ 'index.html': 'from the host' }));
    // In the container's directory, on $PORT: the host port of 8080.
    await container.run({ path: '/bin/sh', args: ['-c', 'exec /bin/busybox httpd -f -p "$PORT" -h www'] }, collect());
    const host = tlsPorts(network)[61001]!;
    const answer = await until('an answer through the proxy', async () => {
      const a = await tlsGet('127.0.0.1', host, req.guid!);
      return a.body !== undefined && a;
    });
    expect(answer).toMatchObject({ body: 'from the host', cn: req.guid });
    await until("the connections' children gone", () => socats().length === 1); // one listener
    await store.destroy(req.handle);
    expect(socats()).toEqual([]);
  });
});
