// The work a chaos run submits: apps whose every process carries the run's marker in its environment, and tasks
// that record each run of their action on the host.
import type { IDesiredLRP, ITask } from '../../src/crds/models.ts';

export interface RunInfo {
  runId: string;
  /** The harness's pid: a later run kills what a killed harness left behind (host.ts killRunProcesses). */
  ownerPid: number;
  namespace: string;
}

const env = (run: RunInfo, kind: 'lrp' | 'task', id: string) => [
  { name: 'CHAOS_RUN', value: run.runId },
  { name: 'CHAOS_OWNER', value: String(run.ownerPid) },
  { name: 'CHAOS_KIND', value: kind },
  { name: 'CHAOS_ID', value: id },
];

export interface AppOptions {
  instances: number;
  /** Seconds the setup sleeps before the action starts: widens the CLAIMED-but-not-RUNNING window. */
  setupSleepS?: number;
  memoryMb?: number;
}

/** An app whose instances sleep (one process each, `exec`ed, so it dies at once on SIGTERM). */
export function appSpec(run: RunInfo, name: string, o: AppOptions): Partial<IDesiredLRP> {
  return {
    metadata: { name, namespace: run.namespace },
    spec: {
      processGuid: name,
      domain: 'chaos',
      rootFs: 'preloaded:busybox',
      instances: o.instances,
      memoryMb: o.memoryMb ?? 8,
      diskMb: 8,
      environmentVariables: env(run, 'lrp', name),
      ...(o.setupSleepS
        ? { setup: { run: { path: '/bin/sh', args: ['-c', `sleep ${o.setupSleepS}`], user: 'root' } } }
        : {}),
      action: { run: { path: '/bin/sh', args: ['-c', 'exec sleep 1000000'], user: 'root' } },
      // Restarts are not what these runs test: a crashed instance comes back at once.
      crashRestartPolicy: { minBackoffMs: 0, maxBackoffMs: 0 },
    },
  };
}

export interface TaskOptions {
  /** How long the action runs, in seconds. */
  sleepS: number;
  /**
   * Absolute path of the marker file on the host (process backend only: its processes see the host's files).
   * Without it the run is only seen in /proc.
   */
  marker?: string;
}

/** A task that records its run ("start <guid> <pid> <dir>" ... "end <guid> <pid>") and sleeps meanwhile. */
export function taskSpec(run: RunInfo, name: string, o: TaskOptions): Partial<ITask> {
  const script = o.marker
    ? `echo "start $CHAOS_ID $$ $(pwd)" >> ${o.marker}; sleep ${o.sleepS}; echo "end $CHAOS_ID $$" >> ${o.marker}`
    : `sleep ${o.sleepS}`;
  return {
    metadata: { name, namespace: run.namespace },
    spec: {
      taskGuid: name,
      domain: 'chaos',
      rootFs: 'preloaded:busybox',
      memoryMb: 8,
      diskMb: 8,
      environmentVariables: env(run, 'task', name),
      action: { run: { path: '/bin/sh', args: ['-c', script], user: 'root' } },
    },
  };
}
