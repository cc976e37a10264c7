// A cell agent on this machine running real containers with CNI networking, as the end-to-end tests start it:
// a RuncBackend on its own bridge and subnet, and a Rep (for it or a containerd backend) with a test cell's
// capacity, the busybox stack and short intervals; plus removing a cell's bridge and an instance's host port.
import { execFileSync } from 'node:child_process';
import type { StackMap } from '../../src/cell-agent/backends/rootfs.ts';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import type { ContainerBackend } from '../../src/cell-agent/backends/types.ts';
import { Rep, type RepOptions } from '../../src/cell-agent/rep.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import type { useDiego } from './fixture.ts';

export interface RuncCellNetwork {
  stateDir: string;
  idPrefix: string;
  networkName: string;
  bridge: string;
  /** Second octet of the cell's subnet: 10.<subnet>.<pid % 250>.0/24. */
  subnet: number;
  ipamDataDir: string;
  diskCheckIntervalMs?: number;
  /** Stacks the backend runs (default busybox only). */
  stacks?: StackMap;
}

/** A runc backend keeping its state in `stateDir`, its containers on their own bridge and subnet. */
export function runcBackend(o: RuncCellNetwork): RuncBackend {
  return new RuncBackend({
    stateDir: o.stateDir,
    idPrefix: o.idPrefix,
    ...(o.stacks ? { stacks: o.stacks } : {}),
    ...(o.diskCheckIntervalMs !== undefined ? { diskCheckIntervalMs: o.diskCheckIntervalMs } : {}),
    network: {
      networkName: o.networkName,
      bridge: o.bridge,
      subnet: `10.${o.subnet}.${process.pid % 250}.0/24`,
      ipamDataDir: o.ipamDataDir,
    },
  });
}

/**
 * A Rep (not started) for `backend` on the test's control plane: zone z1, 4 GiB memory, 8 GiB disk and 50
 * containers, the busybox stack, 200 ms startup checks and a 2 s graceful shutdown, unless `o` says otherwise.
 */
export function testRep(
  env: ReturnType<typeof useDiego>,
  backend: ContainerBackend,
  o: Pick<RepOptions, 'cellId'> & Partial<RepOptions>,
): Rep {
  return new Rep({
    kc: env.kc,
    zone: 'z1',
    capacity: { memoryMb: 4096, diskMb: 8192, containers: 50 },
    stacks: ['busybox'],
    backend,
    log: env.log,
    systemNamespace: env.systemNamespace,
    startupIntervalMs: 200,
    gracefulShutdownMs: 2000,
    ...o,
  });
}

/** Deletes a network link (a test cell's CNI bridge); one that is gone already is fine. */
export function deleteLink(name: string): void {
  try {
    execFileSync('ip', ['link', 'delete', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** The host port an instance's container port 8080 is mapped to (one argument: fits Array.map). */
export const hostPortOf = (a: IActualLRP): number | undefined =>
  a.status?.netInfo?.ports?.find((p) => p.containerPort === 8080)?.hostPort;
