// The `cell-agent` role: Diego's rep + executor for one cell, on this host (or as a DaemonSet pod).
import { execFileSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ContainerdBackend } from '../cell-agent/backends/containerd.ts';
import { ProcessBackend } from '../cell-agent/backends/process.ts';
import { RuncBackend } from '../cell-agent/backends/runc.ts';
import type { ContainerBackend } from '../cell-agent/backends/types.ts';
import { serveUntilStopped } from '../cell-agent/drain.ts';
import { Rep } from '../cell-agent/rep.ts';
import { loadKubeConfig } from '../lib/kube.ts';

export interface CellAgentOptions {
  log: Logger;
  kubeconfig?: string;
  cellId: string;
  zone?: string;
  memoryMb: number;
  diskMb: number;
  containers: number;
  stacks: string[];
  backend: 'runc' | 'containerd' | 'process' | 'auto';
  stateDir: string;
  /** containerd's socket for the containerd backend (default /run/containerd/containerd.sock). */
  containerdAddress?: string;
  /** Registries (host:port) pulled over plain HTTP besides loopback ones: Diego's insecure_docker_registry_list. */
  insecureDockerRegistries?: string[];
  systemNamespace?: string;
  /** Diego's evacuation_timeout (default 600 s): how long instances may take to move when the cell drains. */
  evacuationTimeoutMs?: number;
}

/**
 * containerd when asked for (the backend that runs docker:// images); else runc when we are root and runc is
 * installed; otherwise plain processes (laptops, unprivileged tests).
 */
export function pickBackend(
  kind: CellAgentOptions['backend'],
  stateDir: string,
  log: Logger,
  containerd: Pick<CellAgentOptions, 'containerdAddress' | 'insecureDockerRegistries'> = {},
): ContainerBackend {
  if (kind === 'containerd') {
    return new ContainerdBackend({
      address: containerd.containerdAddress ?? DEFAULT_CONTAINERD_ADDRESS,
      stateDir: join(stateDir, 'containerd'),
      insecureRegistries: containerd.insecureDockerRegistries,
      network: { ipamDataDir: join(stateDir, 'ipam') },
    });
  }
  let useRunc = kind === 'runc';
  if (kind === 'auto') {
    try {
      execFileSync('runc', ['--version'], { stdio: 'ignore' });
      useRunc = process.getuid?.() === 0;
    } catch {
      useRunc = false;
    }
    if (!useRunc)
      log.warn('runc is not usable here (needs root and runc): running work as plain processes, without isolation');
  }
  if (!useRunc) return new ProcessBackend({ baseDir: join(stateDir, 'containers') });
  return new RuncBackend({
    stateDir,
    network: { ipamDataDir: join(stateDir, 'ipam') },
  });
}

export function startCellAgent(kc: KubeConfig, opts: Omit<CellAgentOptions, 'kubeconfig'>): Promise<Rep> {
  const rep = new Rep({
    kc,
    cellId: opts.cellId,
    zone: opts.zone,
    capacity: { memoryMb: opts.memoryMb, diskMb: opts.diskMb, containers: opts.containers },
    stacks: opts.stacks,
    backend: pickBackend(opts.backend, opts.stateDir, opts.log, opts),
    rootfsProviders: opts.backend === 'containerd' ? ['docker'] : [],
    log: opts.log,
    systemNamespace: opts.systemNamespace,
    evacuationTimeoutMs: opts.evacuationTimeoutMs,
  });
  return rep.start().then(() => rep);
}

/** In a DaemonSet pod (NODE_NAME set), the zone is the node's topology.kubernetes.io/zone label. */
export async function nodeZone(kc: KubeConfig, nodeName: string | undefined): Promise<string | undefined> {
  if (!nodeName) return undefined;
  const node = await kc.makeApiClient(CoreV1Api).readNode({ name: nodeName });
  return node.metadata?.labels?.['topology.kubernetes.io/zone'];
}

export async function runCellAgent(opts: CellAgentOptions): Promise<number> {
  const kc = loadKubeConfig(opts.kubeconfig);
  const zone = opts.zone || (await nodeZone(kc, process.env.NODE_NAME)) || '';
  const rep = await startCellAgent(kc, { ...opts, zone });
  // SIGTERM and node drains evacuate (Diego's drain); SIGINT stops at once.
  await serveUntilStopped(kc, rep, { log: opts.log, nodeName: process.env.NODE_NAME });
  await rep.stop();
  return 0;
}

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
export const defaultCellId = (): string => process.env.NODE_NAME ?? hostname();
export const defaultStateDir = (): string => join(tmpdir(), 'diego-cell');
