// Re-adoption after an agent restart. Containers outlive the agent (runc; see backends/detached.ts) and carry
// properties naming their ActualLRP or Task (container-tags.ts). On start the rep lists the backend's
// containers: one whose work is still assigned to this cell, with the same instance guid, is taken over without
// restarting it — the rep re-attaches to the processes the long-running action started (tagged 'action'),
// resumes the health checks, and handles a later crash, stop or delete as usual. Anything else is destroyed.
// Backends whose processes die with the agent (process) have nothing to adopt: their containers are orphans.
import type { Logger } from 'pino';
import type { IActualLRP, ITask } from '../crds/models.ts';
import { holds } from '../lifecycle/actual-lrp.ts';
import type { Container, ContainerBackend, ProcessHandle, ProcessIO, ProcessSpec } from './backends/types.ts';
import { ownerOf, TAG_ACTION } from './container-tags.ts';
import { taskHandle } from './bulk-sync.ts';
import { cancelledError, emittableError } from './executor/errors.ts';
import type { LogStreamer } from './executor/log.ts';

/** The same container, with every process it starts tagged (so a restarted agent can find them). */
export function tagProcesses(c: Container, tag: string = TAG_ACTION): Container {
  return {
    handle: c.handle,
    properties: c.properties,
    run: (proc: ProcessSpec, io: ProcessIO) => c.run({ ...proc, tag }, io),
    streamIn: (p, tar, opts) => c.streamIn(p, tar, opts),
    streamOut: (p, opts) => c.streamOut(p, opts),
    info: () => c.info(),
    netIn: (port, hostPort) => c.netIn(port, hostPort),
    ...(c.processes ? { processes: () => c.processes!() } : {}),
    ...(c.attach ? { attach: (id: string, io: ProcessIO) => c.attach!(id, io) } : {}),
    ...(c.usage ? { usage: () => c.usage!() } : {}),
  };
}

export type Reattached =
  | { kind: 'running'; handles: ProcessHandle[] }
  /** Every action process had exited while no agent watched. */
  | { kind: 'exited'; status: number }
  /** Nothing to attach to (the backend cannot, or the action had not started yet). */
  | { kind: 'none' };

/** Finds the container's processes tagged `tag` (the action's by default) and attaches to those still running. */
export async function reattachAction(container: Container, log: LogStreamer, tag = TAG_ACTION): Promise<Reattached> {
  if (!container.processes || !container.attach) return { kind: 'none' };
  const records = (await container.processes()).filter((r) => r.tag === tag);
  if (records.length === 0) return { kind: 'none' };
  const live = records.filter((r) => r.exitStatus === undefined);
  if (live.length === 0) return { kind: 'exited', status: records.find((r) => r.exitStatus !== 0)?.exitStatus ?? 0 };
  const io: ProcessIO = { stdout: (l) => log.stdout(l), stderr: (l) => log.stderr(l) };
  return { kind: 'running', handles: await Promise.all(live.map((r) => container.attach!(r.id, io))) };
}

/** The exit error a run step would have given for `status` (`<SOURCE>: Exited with status N`). */
export function exitError(log: LogStreamer, status: number): Error {
  log.stdout(`Exit status ${status}`);
  return emittableError('exit', `${log.sourceName}: Exited with status ${status}`);
}

/**
 * The re-attached action as the supervisor's `action`: resolves or rejects as the run step would when the first
 * of its processes exits; on abort, SIGTERM, then SIGKILL after the grace period, and rejects 'cancelled'.
 */
export function waitForAction(handles: ProcessHandle[], log: LogStreamer, gracefulShutdownMs: number) {
  return async (signal: AbortSignal, ready: (() => void) | undefined): Promise<void> => {
    ready?.();
    const first = Promise.race(handles.map((h) => h.wait()));
    const stopped = new Promise<'stopped'>((resolve) => {
      if (signal.aborted) resolve('stopped');
      signal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const status = await Promise.race([first, stopped]);
    if (status === 'stopped') {
      for (const h of handles) h.signal('SIGTERM');
      const timer = setTimeout(() => handles.forEach((h) => h.signal('SIGKILL')), gracefulShutdownMs);
      await Promise.all(handles.map((h) => h.wait()));
      clearTimeout(timer);
      throw cancelledError();
    }
    if (status !== 0) throw exitError(log, status);
  };
}

export interface AdoptDeps {
  cellId: string;
  /** The containers (the executor's store: destroying one releases what it holds). */
  backend: Pick<ContainerBackend, 'list' | 'lookup' | 'destroy'>;
  log: Logger;
  lrp(namespace: string, name: string): IActualLRP | undefined;
  task(namespace: string, name: string): ITask | undefined;
  adoptLRP(a: IActualLRP, container: Container): void;
  adoptTask(t: ITask, container: Container): void;
}

/** Goes through the backend's containers once (at start): adopts what is still ours, destroys the rest. */
export async function adoptContainers(d: AdoptDeps): Promise<{ adopted: string[]; destroyed: string[] }> {
  const adopted: string[] = [];
  const destroyed: string[] = [];
  for (const handle of await d.backend.list()) {
    const container = await d.backend.lookup(handle).catch(() => undefined);
    const owner = container ? ownerOf(container.properties) : undefined;
    let taken = false;
    if (container && owner?.kind === 'lrp') {
      const a = d.lrp(owner.namespace, owner.name);
      // Its record still names this container (Diego's instance key), claimed or running, and is not an evacuated copy.
      const state = a?.status?.state;
      if (
        holds(a, { instanceGuid: handle, cellId: d.cellId }) &&
        !a.metadata.deletionTimestamp &&
        (state === 'CLAIMED' || state === 'RUNNING') &&
        a.status?.presence !== 'EVACUATING'
      ) {
        d.adoptLRP(a, container);
        taken = true;
      }
    } else if (container && owner?.kind === 'task') {
      const t = d.task(owner.namespace, owner.name);
      if (t && t.status?.state === 'Running' && t.status.cellId === d.cellId && taskHandle(t) === handle) {
        d.adoptTask(t, container);
        taken = true;
      }
    }
    if (taken) {
      adopted.push(handle);
      continue;
    }
    try {
      await d.backend.destroy(handle);
      destroyed.push(handle);
      d.log.info({ handle, owner }, 'destroyed a container whose work is no longer assigned here');
    } catch (err) {
      d.log.warn({ err, handle }, 'could not destroy a container whose work is no longer assigned here');
    }
  }
  if (adopted.length > 0 || destroyed.length > 0) d.log.info({ adopted, destroyed }, 'containers found at start');
  return { adopted, destroyed };
}
