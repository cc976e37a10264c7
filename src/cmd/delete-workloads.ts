// The `delete-workloads` role: what `helm uninstall` runs first (the chart's pre-delete hook) while the operator is
// still there. It deletes every DesiredLRP, Task and ActualLRP in the cluster and waits until the ActualLRPs are
// gone, which is when each cell agent has destroyed the instance's container (its diego.dev/container finalizer).
// Without it, uninstalling would leave containers running with no agent watching them and ActualLRPs whose
// finalizer nobody removes. The decision (what to delete, whether it is done) is pure; the loop around it is I/O.
import type { Logger } from 'pino';
import type { Command } from 'commander';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { FINALIZER_CONTAINER } from '../lifecycle/names.ts';
import { loadKubeConfig } from '../lib/kube.ts';
import { pool } from '../lib/pool.ts';
import { DiegoClient, type DiegoKind } from '../lib/resources.ts';
import { createLogger } from '../lib/log.ts';
import { kubeconfigOption, nonNegative, roleCommand, valueOption } from './flags.ts';

export interface Workloads {
  desiredLrps: IDesiredLRP[];
  tasks: ITask[];
  actualLrps: IActualLRP[];
}

export interface Deletion {
  kind: DiegoKind;
  namespace: string;
  name: string;
}

export interface WorkloadsPlan {
  /** Objects not yet being deleted. */
  delete: Deletion[];
  /** Nothing left: every container is gone. */
  done: boolean;
  /** What is still there, for the log and the failure message. */
  left: string;
}

/** What to delete next and whether the work is done (pure). */
export function planDeletion(w: Workloads): WorkloadsPlan {
  const del: Deletion[] = [];
  const add = (
    kind: DiegoKind,
    objs: { metadata: { name?: string; namespace?: string; deletionTimestamp?: unknown } }[],
  ) => {
    for (const o of objs)
      if (!o.metadata.deletionTimestamp)
        del.push({ kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name ?? '' });
  };
  // DesiredLRPs first, so the converger does not recreate the ActualLRPs deleted beside them.
  add('DesiredLRP', w.desiredLrps);
  add('Task', w.tasks);
  add('ActualLRP', w.actualLrps);
  const waiting = w.actualLrps.filter((a) => a.metadata.finalizers?.includes(FINALIZER_CONTAINER));
  const byCell = new Map<string, number>();
  for (const a of waiting) {
    const cell = a.spec.cellId ?? '(none)';
    byCell.set(cell, (byCell.get(cell) ?? 0) + 1);
  }
  const parts = [
    `${w.desiredLrps.length} DesiredLRPs`,
    `${w.tasks.length} Tasks`,
    `${w.actualLrps.length} ActualLRPs`,
    ...(waiting.length > 0
      ? [
          `containers not yet destroyed on cells: ${[...byCell]
            .sort()
            .map(([c, n]) => `${c} (${n})`)
            .join(', ')}`,
        ]
      : []),
  ];
  const done = w.desiredLrps.length + w.tasks.length + w.actualLrps.length === 0;
  return { delete: del, done, left: parts.join(', ') };
}

export interface DeleteWorkloadsOptions {
  log: Logger;
  kubeconfig?: string;
  /** How long to wait for the cell agents to destroy the containers (default 300 s). */
  timeoutMs?: number;
  /** Deletions in flight at once (default 20). */
  concurrency?: number;
  /** Between looks at what is left (default 2 s). */
  pollMs?: number;
  signal?: AbortSignal;
}

/** Deletes every workload and waits for its containers to be destroyed. Exit code 0 when none is left, else 1. */
export async function runDeleteWorkloads(opts: DeleteWorkloadsOptions): Promise<number> {
  const client = new DiegoClient(loadKubeConfig(opts.kubeconfig));
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const deadline = Date.now() + timeoutMs;
  const { log } = opts;
  for (;;) {
    const [desiredLrps, tasks, actualLrps] = await Promise.all([
      client.list('DesiredLRP'),
      client.list('Task'),
      client.list('ActualLRP'),
    ]);
    const plan = planDeletion({ desiredLrps, tasks, actualLrps });
    if (plan.done) {
      log.info('no DesiredLRP, Task or ActualLRP left: every container was destroyed');
      return 0;
    }
    if (Date.now() >= deadline || opts.signal?.aborted) {
      log.error(
        { left: plan.left },
        `workloads still present after ${Math.round(timeoutMs / 1000)} s: ${plan.left}. Each cell agent removes its ` +
          `containers' ${FINALIZER_CONTAINER} finalizer once it destroyed them; check that the cell-agent pods on those ` +
          'nodes run (kubectl -n <release namespace> get pods), or raise uninstall.timeoutSeconds',
      );
      return 1;
    }
    if (plan.delete.length > 0) log.info({ deleting: plan.delete.length, left: plan.left }, 'deleting workloads');
    else log.info({ left: plan.left }, 'waiting for the cell agents to destroy the containers');
    await pool(
      plan.delete.map((d) => () => client.delete(d.kind, { namespace: d.namespace, name: d.name })),
      opts.concurrency ?? 20,
      { signal: opts.signal, backoff: { baseMs: 200, maxMs: 5_000 } },
    ).catch((err: unknown) => log.warn({ err }, 'some deletions failed; trying again'));
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 2_000));
  }
}

export function deleteWorkloadsCommand(): Command {
  return roleCommand(
    'delete-workloads',
    'Delete every DesiredLRP, Task and ActualLRP and wait until the cell agents destroyed their containers: what the chart runs before `helm uninstall` removes it.',
  )
    .addOption(kubeconfigOption())
    .addOption(valueOption('--timeout <seconds>', 'How long to wait for the containers to be gone.', '300'))
    .action(async (f: { kubeconfig?: string; timeout: string }) => {
      process.exitCode = await runDeleteWorkloads({
        log: createLogger(),
        kubeconfig: f.kubeconfig,
        timeoutMs: nonNegative('--timeout', f.timeout) * 1000,
      });
    });
}
