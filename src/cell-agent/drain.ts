// When the cell agent evacuates (Diego's drain): cordoning the agent's Node (kubectl cordon / drain sets
// spec.unschedulable) evacuates and keeps the cell registered but taking no work until the node is schedulable
// again. SIGTERM either evacuates, then the agent exits (Diego's rep; a host shutting down), or, with
// onSigterm 'detach' (the chart's default), the agent exits and leaves its containers running for the next agent
// to adopt (a DaemonSet pod replaced by a rollout or deleted). SIGINT (Ctrl-C) stops at once, without evacuating.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { untilSignal } from '../cmd/signals.ts';
import { createInformer, type Informer, type KubernetesObject } from '../lib/informer.ts';
import type { EvacuationResult } from './evacuation.ts';

export interface Evacuable {
  evacuate(): Promise<EvacuationResult>;
  readonly evacuator: { resume(): Promise<void> };
}

export interface NodeLike extends KubernetesObject {
  spec?: { unschedulable?: boolean };
}

/**
 * Follows spec.unschedulable of the Node `nodeName`: calls back with true when it is cordoned and false when it
 * is schedulable again (the first state seen counts as a change). Needs get/list/watch on nodes.
 */
export function watchNodeDrain(
  kc: KubeConfig,
  nodeName: string,
  log: Logger,
  onChange: (draining: boolean) => void,
): Informer<NodeLike> {
  const nodes = createInformer<NodeLike>(kc, {
    path: '/api/v1/nodes',
    fieldSelector: `metadata.name=${nodeName}`,
    logger: log,
    name: 'cell-node',
  });
  let last = false;
  const seen = (n: NodeLike) => {
    const draining = n.spec?.unschedulable === true;
    if (draining === last) return;
    last = draining;
    onChange(draining);
  };
  nodes.on('add', seen);
  nodes.on('update', seen);
  // Not awaited: without RBAC on nodes the informer keeps retrying (and logging) but the cell still runs.
  void nodes.start();
  return nodes;
}

/** Evacuates the cell while its Node is cordoned; it takes work again once the node is schedulable. */
export function followNodeDrain(kc: KubeConfig, cell: Evacuable, nodeName: string, log: Logger): Informer<NodeLike> {
  const warn = (err: unknown) => log.warn({ err }, 'evacuation failed');
  return watchNodeDrain(kc, nodeName, log, (draining) => {
    log.info({ node: nodeName, draining }, draining ? 'node cordoned: evacuating' : 'node schedulable again');
    if (draining) void cell.evacuate().catch(warn);
    else void cell.evacuator.resume().catch(warn);
  });
}

/** What SIGTERM does: evacuate then stop (Diego), or leave the containers running for the next agent. */
export type OnSigterm = 'evacuate' | 'detach';

/** How the agent stops: its containers stopped, or left running (detached) for the next agent to adopt. */
export type Stop = 'stop-containers' | 'detach';

/**
 * Serves until SIGINT or SIGTERM, evacuating on node drains meanwhile, and on SIGTERM before returning unless
 * onSigterm is 'detach'. Says whether the caller stops its containers or leaves them running.
 */
export async function serveUntilStopped(
  kc: KubeConfig,
  cell: Evacuable,
  opts: { log: Logger; nodeName?: string; onSigterm?: OnSigterm },
): Promise<Stop> {
  const { log, nodeName, onSigterm = 'evacuate' } = opts;
  const warn = (err: unknown) => log.warn({ err }, 'evacuation failed');
  const node = nodeName ? followNodeDrain(kc, cell, nodeName, log) : undefined;
  const sig = await untilSignal();
  await node?.stop();
  if (sig !== 'SIGTERM') {
    log.info({ signal: sig }, 'stopping the cell agent without evacuating');
    return 'stop-containers';
  }
  if (onSigterm === 'detach') {
    log.info({ signal: sig }, 'stopping the cell agent; its containers go on running for the next agent to adopt');
    return 'detach';
  }
  log.info({ signal: sig }, 'evacuating before the cell agent stops');
  const result = await cell.evacuate().catch((err: unknown) => {
    warn(err);
    return undefined;
  });
  log.info({ ...result }, 'evacuation done: stopping the cell agent');
  return 'stop-containers';
}
