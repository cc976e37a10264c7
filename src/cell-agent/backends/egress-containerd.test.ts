// Egress rules enforced on real containerd containers with CNI networking, under a private containerd
// (test/support/containerd.ts; needs root, containerd, runc, busybox-static and iptables, as the other containerd
// tests). The firewall is the runc backend's (egress-runc.test.ts covers it in depth); this checks the
// containerd backend installs it before the task starts, keeps it for a restarted agent and removes it.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { containerdUnavailable, startContainerd, type TestContainerd } from '../../../test/support/containerd.ts';
import { ContainerdBackend } from './containerd.ts';
import { connect, iptablesSave, one, startEgressServers, type EgressServers } from './egress-testing.ts';
import { containerChain, removeBridgeFirewall } from './firewall.ts';

const unavailable = containerdUnavailable();
// Like the other containerd tests: fail loudly, never skip.
if (unavailable) throw new Error(`the containerd egress tests cannot run here: ${unavailable}`);

const n = process.pid % 250;
const bridge = `dgf${process.pid % 1_000_000}`;
const gateway = `10.227.${n}.1`;

let dir: string;
let containerd: TestContainerd;
let servers: EgressServers;
let backend: ContainerdBackend;

/** The cell's backend; a second one on the same state stands for a restarted agent. */
const make = () =>
  new ContainerdBackend({
    address: containerd.address,
    snapshotter: containerd.snapshotter,
    stateDir: path.join(dir, 'state'),
    idPrefix: `f${process.pid}-`,
    outputDrainMs: 100,
    network: {
      networkName: `dgf-${process.pid}`,
      bridge,
      subnet: `10.227.${n}.0/24`,
      ipamDataDir: path.join(dir, 'ipam'),
      defaultEgress: [{ protocol: 'tcp', networks: one(servers.srv2), ports: [{ start: 7003, end: 7003 }] }],
    },
  });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'egress-containerd-'));
  containerd = await startContainerd();
  servers = await startEgressServers(`dgfsrv${process.pid}`, `dgt${process.pid % 1_000_000}`, `10.225.${n}.8`);
  backend = make();
}, 120_000);

afterEach(async () => {
  for (const handle of await backend.list()) await backend.destroy(handle);
});

afterAll(async () => {
  await containerd?.stop();
  servers?.stop();
  try {
    execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  } catch {
    // never created
  }
  await removeBridgeFirewall(bridge);
  expect(iptablesSave()).not.toContain(bridge);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('egress rules on containerd containers', () => {
  it('are enforced, kept for a restarted agent and removed with the container', { timeout: 120_000 }, async () => {
    const { srv1, srv2 } = servers;
    expect(backend.enforcesEgress).toBe(true);
    const c = await backend.create({
      handle: 'ctrd-app',
      egress: [{ protocol: 'tcp', networks: one(srv1), ports: [{ start: 7001, end: 7001 }] }],
    });
    expect(await connect(c, srv1, 7001)).toBe(`tcp 7001 ${srv1}`);
    expect(await connect(c, srv1, 7004)).toMatch(/Connection refused/);
    expect(await connect(c, srv2, 7001)).toMatch(/Connection refused/);
    expect(await connect(c, srv2, 7003)).toBe(`tcp 7003 ${srv2}`); // the default rule
    expect(await connect(c, gateway, 7001)).toMatch(/Connection refused/);

    // A restarted agent adopts the container with its rules untouched.
    const chain = containerChain(backend.containerId('ctrd-app'));
    const rulesOf = () =>
      iptablesSave()
        .split('\n')
        .filter((l) => l.includes(chain));
    const before = rulesOf();
    expect(before.length).toBeGreaterThan(2);
    const restarted = make();
    await restarted.create({ handle: 'ctrd-other' });
    const adopted = await restarted.lookup('ctrd-app');
    expect(adopted).toBeDefined();
    expect(rulesOf()).toEqual(before);
    expect(await connect(adopted!, srv1, 7004)).toMatch(/Connection refused/);

    // Destroyed by the new agent (as bulk sync destroys an orphan): nothing left.
    for (const handle of await restarted.list()) await restarted.destroy(handle);
    const saved = iptablesSave();
    expect(saved).not.toContain(chain);
    expect(saved).not.toContain('--comment ctrd-app');
    expect(saved).not.toContain('--comment ctrd-other');
  });

  it('is not enforced on the host network, and says so', () => {
    const host = new ContainerdBackend({ address: containerd.address, stateDir: path.join(dir, 'host-state') });
    expect(host.enforcesEgress).toBe(false);
  });
});
