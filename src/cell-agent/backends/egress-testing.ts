// Helpers for the egress tests on real containers (egress-runc.test.ts, egress-containerd.test.ts): servers in a
// network namespace of the test's own, reached through a veth from the host (so traffic from a container to them
// is routed through the host's FORWARD chain, as traffic to any other network would be), and ways to connect to
// them from a container. Nothing leaves the machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { eventually } from '../testing.ts';
import { sh } from './testing.ts';
import type { Container, EgressRule } from './types.ts';

export interface EgressServers {
  /** The host's end of the veth: a host address off the container bridge. */
  hostSide: string;
  /** Two addresses of the server namespace; TCP 7001, 7003, 7004 and UDP 53, 7002, 7005 answer on both. */
  srv1: string;
  srv2: string;
  /** What the servers saw: 'udp <port>' per datagram. */
  log: string[];
  stop(): void;
}

// TCP servers answer one line ('tcp <port> <local address>') and close; UDP ones log each datagram and answer
// with a TFTP error, so a tftp client stops waiting.
const SERVER = `
const net = require('node:net'), dgram = require('node:dgram');
for (const p of [7001, 7003, 7004]) net.createServer((s) => s.end('tcp ' + p + ' ' + s.localAddress + '\\n')).listen(p, '0.0.0.0');
for (const p of [53, 7002, 7005]) {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => { console.log('udp ' + p); u.send(Buffer.from([0, 5, 0, 1, 120, 0]), r.port, r.address); });
  u.bind(p, '0.0.0.0');
}
setTimeout(() => console.log('ready'), 200);
`;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/**
 * Starts the servers in network namespace `ns` on the /29 at `net` (e.g. '10.225.7.0': the host end is .1, the
 * servers .2 and .3), behind the veth `veth` (at most 15 characters).
 */
export async function startEgressServers(ns: string, veth: string, net: string): Promise<EgressServers> {
  const base = net.split('.').slice(0, 3).join('.');
  const last = Number(net.split('.')[3]);
  const [hostSide, srv1, srv2] = [1, 2, 3].map((i) => `${base}.${last + i}`) as [string, string, string];
  ip('netns', 'add', ns);
  let server: ChildProcess | undefined;
  const stop = () => {
    server?.kill();
    for (const args of [
      ['netns', 'delete', ns],
      ['link', 'delete', veth],
    ]) {
      try {
        ip(...args);
      } catch {
        // gone already
      }
    }
  };
  try {
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${hostSide}/29`, 'dev', veth);
    ip('link', 'set', veth, 'up');
    for (const a of [srv1, srv2]) ip('-n', ns, 'addr', 'add', `${a}/29`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const log: string[] = [];
    server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    server.stdout!.on('data', (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean)));
    await eventually(() => log.includes('ready'), 20_000);
    return { hostSide, srv1, srv2, log, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

/** A rule network of one address. */
export function one(address: string): EgressRule['networks'] {
  return [{ start: address, end: address }];
}

/** Connects from the container (sending an HTTP request): the last line it got, or nc's error. */
export async function connect(c: Container, address: string, port: number): Promise<string> {
  const r = await sh(c, `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${address} ${port}`);
  return r.out.at(-1) ?? r.err.join(' ');
}

/** Sends UDP datagrams (TFTP read requests, for at most 2 s) from the container. */
export async function sendUdp(c: Container, address: string, port: number): Promise<void> {
  await sh(c, `timeout 2 tftp -g -r x -l /tmp/x ${address} ${port} >/dev/null 2>&1; true`);
}

/** Runs a script in a container's network namespace as the host's root (every capability); its output. */
export function inNetns(netns: string, script: string): string {
  try {
    return execFileSync('ip', ['netns', 'exec', netns, 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    return `failed: ${String(e.stdout ?? '')} ${String(e.stderr ?? '')}`;
  }
}

/** The packet counter of the first rule of `chain` whose line contains `text` (`iptables -L -v -x`). */
export function packets(chain: string, text: string): number {
  const listing = execFileSync('iptables', ['-w', '-L', chain, '-v', '-x', '-n']).toString();
  const row = listing.split('\n').find((l) => l.includes(text));
  return Number(row?.trim().split(/\s+/)[0] ?? 0);
}

/** The filter table as iptables-save prints it. */
export function iptablesSave(): string {
  return execFileSync('iptables-save', ['-t', 'filter']).toString();
}
