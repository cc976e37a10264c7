// Egress rules enforced on real runc containers with CNI networking (needs root, runc, busybox-static and
// iptables, as the other runc tests). Servers run on the host's loopback and addresses and in a network
// namespace of the test's own (egress-testing.ts); nothing leaves the machine.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing.ts';
import { CniNetwork } from './cni.ts';
import {
  connect,
  inNetns,
  iptablesSave,
  one,
  packets,
  sendUdp,
  startEgressServers,
  type EgressServers,
} from './egress-testing.ts';
import { bridgeChains, containerChain, enforcesContainerToContainer, removeBridgeFirewall } from './firewall.ts';
import { ensureBusyboxRootfs } from './rootfs.ts';
import { RuncBackend } from './runc.ts';
import { sh } from './testing.ts';

const n = process.pid % 250;
const bridge = `dge${process.pid % 1_000_000}`;
const gateway = `10.226.${n}.1`;

let dir: string;
let backend: RuncBackend;
let servers: EgressServers;
let hostServer: Server;
let hostPort = 0;
let loopServer: Socket;
let loopPort = 0;
const loopReceived: string[] = [];

/** The cell's backend; a second one on the same state stands for a restarted agent. */
function makeBackend(): RuncBackend {
  return new RuncBackend({
    stateDir: path.join(dir, 'state'),
    idPrefix: `e${process.pid}-`,
    outputDrainMs: 100,
    network: {
      networkName: `dge-${process.pid}`,
      bridge,
      subnet: `10.226.${n}.0/24`,
      ipamDataDir: path.join(dir, 'ipam'),
      // The platform default: tcp to srv2:7003.
      defaultEgress: [{ protocol: 'tcp', networks: one(servers.srv2), ports: [{ start: 7003, end: 7003 }] }],
      dnsServers: [servers.srv1],
    },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'egress-runc-'));
  await ensureBusyboxRootfs();
  servers = await startEgressServers(`dgesrv${process.pid}`, `dgs${process.pid % 1_000_000}`, `10.225.${n}.0`);
  // A TCP server on every host address, and a UDP one on 127.0.0.1.
  hostServer = createServer((s) => s.end('host\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
  hostPort = (hostServer.address() as { port: number }).port;
  loopServer = createSocket('udp4');
  loopServer.on('message', (_m, r) => loopReceived.push(r.address));
  await new Promise<void>((resolve) => loopServer.bind(0, '127.0.0.1', resolve));
  loopPort = loopServer.address().port;
  backend = makeBackend();
}, 60_000);

afterEach(async () => {
  for (const handle of await backend.list()) await backend.destroy(handle);
});

afterAll(async () => {
  servers?.stop();
  hostServer?.close();
  loopServer?.close();
  try {
    execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  } catch {
    // never created
  }
  await removeBridgeFirewall(bridge);
  expect(iptablesSave()).not.toContain(bridge);
  expect(execFileSync('ip6tables-save', ['-t', 'filter']).toString()).not.toContain(bridge);
  await rm(dir, { recursive: true, force: true });
});

describe('egress rules on runc containers', () => {
  it('let a container reach only what its rules and the defaults allow', { timeout: 60_000 }, async () => {
    const { srv1, srv2, hostSide, log } = servers;
    expect(backend.enforcesEgress).toBe(true);
    const c = await backend.create({
      handle: 'app',
      egress: [
        { protocol: 'tcp', networks: one(srv1), ports: [{ start: 7001, end: 7001 }], log: true },
        { protocol: 'udp', networks: one(srv1), ports: [{ start: 7002, end: 7002 }] },
        // A rule naming the cell itself does not open it (as with silk: only DNS reaches the host).
        { protocol: 'tcp', networks: one(gateway), ports: [{ start: hostPort, end: hostPort }] },
      ],
    });
    // tcp: the allowed address and port; not another port, not another address.
    expect(await connect(c, srv1, 7001)).toBe(`tcp 7001 ${srv1}`);
    expect(await connect(c, srv1, 7004)).toMatch(/Connection refused/);
    expect(await connect(c, srv2, 7001)).toMatch(/Connection refused/);
    // The platform default.
    expect(await connect(c, srv2, 7003)).toBe(`tcp 7003 ${srv2}`);
    expect(await connect(c, srv1, 7003)).toMatch(/Connection refused/);
    // The cell itself: the bridge gateway, and a host address on another interface.
    expect(await connect(c, gateway, hostPort)).toMatch(/Connection refused/);
    expect(await connect(c, hostSide, hostPort)).toMatch(/Connection refused/);

    // udp: the allowed port gets the datagrams; another port (the server listens there too) does not.
    await sendUdp(c, srv1, 7005);
    await sendUdp(c, srv1, 7002);
    await eventually(() => log.includes('udp 7002'), 10_000);
    expect(log).not.toContain('udp 7005');
    // DNS to the configured resolver.
    await sh(c, `timeout 2 nslookup example.test ${srv1} >/dev/null 2>&1`);
    await eventually(() => log.includes('udp 53'), 10_000);

    // log: the LOG rule ahead of the logged rule's ACCEPT counted the connection, prefixed with the handle.
    expect(packets(containerChain(backend.containerId('app')), 'prefix "app "')).toBeGreaterThan(0);

    // IPv6 is off in the container: no link-local address to reach the cell's with.
    expect((await sh(c, 'cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip -6 addr')).out).toEqual(['1']);
  });

  it('allows icmp by type, nothing else', { timeout: 60_000 }, async () => {
    const { srv1, srv2 } = servers;
    const c = await backend.create({
      handle: 'pinger',
      egress: [{ protocol: 'icmp', networks: one(srv1), icmp: { type: 8, code: 0 } }],
    });
    // busybox ping needs CAP_NET_RAW, which a container's processes lack: ping from its namespace as the host's
    // root. The host's rules see the same packets (same namespace, address and veth).
    const ping = (address: string, wait: number) =>
      inNetns(backend.containerId('pinger'), `busybox ping -c 1 -W ${wait} ${address}`);
    expect(ping(srv1, 5)).toMatch(/1 packets received/);
    expect(ping(srv2, 2)).toMatch(/failed|0 packets received/);
    expect(ping(gateway, 2)).toMatch(/failed|0 packets received/);
    expect(await connect(c, srv1, 7001)).toMatch(/Connection refused/);
  });

  it("covers 127.0.0.1 on the host, reachable through portmap's route_localnet", { timeout: 60_000 }, async () => {
    // Root in the container's namespace with every capability (more than a container's processes get) routes
    // 127.0.0.1 to the bridge, whose route_localnet (portmap sets it) lets the host accept it. Replies from
    // 127.0.0.1 cannot come back, but datagrams arrive: a loopback UDP server gets them unless the firewall
    // refuses them, which it does even with an allow-everything rule.
    const c = await backend.create({ handle: 'local', egress: [{ protocol: 'all' }] });
    const id = backend.containerId('local');
    const cip = (await c.info()).ip!;
    writeFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1');
    inNetns(
      id,
      'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; ' +
        'ip route del local 127.0.0.0/8 dev lo table local; ip route del local 127.0.0.1 dev lo table local; ' +
        `ip route add 127.0.0.1/32 via ${gateway} dev eth0 src ${cip}`,
    );
    const send = () => inNetns(id, `busybox timeout 2 busybox tftp -g -r x -l /tmp/x 127.0.0.1 ${loopPort}`);
    // The path is real: with an ACCEPT of our own ahead of the firewall, the datagrams arrive.
    const accept = ['-i', bridge, '-s', cip, '-d', '127.0.0.1', '-p', 'udp', '--dport', String(loopPort)];
    execFileSync('iptables', ['-w', '-I', 'INPUT', '1', ...accept, '-j', 'ACCEPT']);
    try {
      send();
      await eventually(() => loopReceived.length > 0, 10_000);
    } finally {
      execFileSync('iptables', ['-w', '-D', 'INPUT', ...accept, '-j', 'ACCEPT']);
    }
    // Without it, the firewall refuses them.
    const received = loopReceived.length;
    const rejected = packets(bridgeChains(bridge).input, 'REJECT');
    send();
    expect(packets(bridgeChains(bridge).input, 'REJECT')).toBeGreaterThan(rejected);
    expect(loopReceived.length).toBe(received);
  });

  it('enforces container to container where bridged traffic crosses iptables', { timeout: 60_000 }, async () => {
    const quiet = { stdout: () => {}, stderr: () => {} };
    const b = await backend.create({ handle: 'b', netIn: [{ containerPort: 8080 }, { containerPort: 8081 }] });
    await sh(b, 'mkdir -p /www && printf b > /www/index.html');
    for (const port of ['8080', '8081']) await b.run({ path: 'httpd', args: ['-f', '-p', port, '-h', '/www'] }, quiet);
    const bInfo = await b.info();
    const bip = bInfo.ip!;
    const a = await backend.create({
      handle: 'a',
      egress: [{ protocol: 'tcp', networks: one(bip), ports: [{ start: 8080, end: 8080 }] }],
    });
    const aip = (await a.info()).ip!;
    await sh(a, 'mkdir -p /www && printf a > /www/index.html');
    await a.run({ path: 'httpd', args: ['-f', '-p', '8080', '-h', '/www'] }, quiet);
    // Both servers are up (seen from the host, which no egress rule governs).
    const fromHost = (address: string, port: number) => {
      try {
        const script = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 ${address} ${port}`;
        return execFileSync('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      } catch {
        return '';
      }
    };
    await eventually(() => fromHost(bip, 8081).endsWith('b') && fromHost(aip, 8080).endsWith('a'), 20_000);
    // Through a host port (portmap's DNAT): rules see the container address and port behind it.
    const hostPortOf = (p: number) => bInfo.ports.find((m) => m.containerPort === p)!.hostPort;
    expect(await connect(a, gateway, hostPortOf(8080))).toBe('b');
    expect(await connect(a, gateway, hostPortOf(8081))).toMatch(/Connection refused/);
    if (enforcesContainerToContainer()) {
      expect(await connect(a, bip, 8080)).toBe('b');
      expect(await connect(a, bip, 8081)).toMatch(/Connection refused/);
      expect(await connect(b, aip, 8080)).toMatch(/Connection refused/); // b has no rules at all
    } else {
      // Documented: without br_netfilter, bridged traffic between containers does not cross iptables.
      expect(await connect(b, aip, 8080)).toBe('a');
    }
  });

  it(
    'keeps the rules across an agent restart; the new agent removes them when it destroys the container',
    { timeout: 60_000 },
    async () => {
      const { srv1 } = servers;
      await backend.create({
        handle: 'kept',
        egress: [{ protocol: 'tcp', networks: one(srv1), ports: [{ start: 7001, end: 7001 }] }],
      });
      const chain = containerChain(backend.containerId('kept'));
      const rulesOf = () =>
        iptablesSave()
          .split('\n')
          .filter((l) => l.includes(chain));
      const before = rulesOf();
      expect(before.length).toBeGreaterThan(2);
      // A new agent (backend) on the same state sets its bridge chains up again and adopts the container.
      const restarted = makeBackend();
      await restarted.create({ handle: 'other' });
      const adopted = await restarted.lookup('kept');
      expect(adopted).toBeDefined();
      expect(rulesOf()).toEqual(before);
      expect(await connect(adopted!, srv1, 7001)).toBe(`tcp 7001 ${srv1}`);
      expect(await connect(adopted!, srv1, 7004)).toMatch(/Connection refused/);
      // As bulk sync destroys an orphan: by handle, on the new agent.
      for (const handle of await restarted.list()) await restarted.destroy(handle);
      const saved = iptablesSave();
      expect(saved).not.toContain(chain);
      expect(saved).not.toContain('--comment kept');
      expect(saved).not.toContain('--comment other');
    },
  );

  it('refuses invalid rules before creating anything', async () => {
    await expect(
      backend.create({ handle: 'bad', egress: [{ protocol: 'tcp', ports: [{ start: 90, end: 80 }] }] }),
    ).rejects.toThrow('egress rule 0: port range 90-80');
    expect(await backend.list()).toEqual([]);
    expect(existsSync(`/var/run/netns/${backend.containerId('bad')}`)).toBe(false);
    expect(() => new CniNetwork({ ipamDataDir: dir, dnsServers: ['not-an-ip'] })).toThrow("DNS server 'not-an-ip'");
    expect(
      () => new CniNetwork({ ipamDataDir: dir, defaultEgress: [{ protocol: 'all', ports: [{ start: 1, end: 1 }] }] }),
    ).toThrow('default egress rule 0: ports are for tcp and udp rules');
  });

  it('is not enforced on the host network, and says so', () => {
    const host = new RuncBackend({ stateDir: path.join(dir, 'host-state'), idPrefix: `h${process.pid}-` });
    expect(host.enforcesEgress).toBe(false);
  });
});
