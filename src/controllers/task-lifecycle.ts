// Moved to src/lifecycle (task.ts: the state machine and reasons; task-ops.ts: the fenced writes, which answer with an
// outcome). This adapter stays only for callers outside the lifecycle refactor that still import from here
// (test/chaos/monitor.ts, test/integration/webhook-outage.test.ts, test/integration/cell-confinement.test.ts); import
// from src/lifecycle instead, and drop it once they do.
import type { ITask } from '../crds/models.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { completeTask as complete, type Outcome, startTask as start } from '../lifecycle/ops.ts';
import type { Completion } from '../lifecycle/task.ts';

export {
  canTransition,
  completedStatus,
  type Completion,
  DEFAULT_MAX_TASK_RETRIES,
  REASON_CANCELLED,
  REASON_CELL_DISAPPEARED,
  REASON_NOT_STARTED,
  rejectedStatus,
} from '../lifecycle/task.ts';

export class TaskTransitionError extends Error {}

function settled<T>(o: Outcome<T>, what: string): T {
  if (o.outcome === 'done') return o.value;
  throw new TaskTransitionError(o.outcome === 'refused' ? o.reason : `${what}: the task changed meanwhile`);
}

/** lifecycle/ops.ts startTask, answering whether to start (throws TaskTransitionError when refused or lost). */
export async function startTask(client: DiegoClient, task: ITask, cellId: string, now = new Date()): Promise<boolean> {
  return settled(await start(client, task, cellId, now), `task ${task.spec.taskGuid}`).shouldStart;
}

/** lifecycle/ops.ts completeTask (throws TaskTransitionError when refused or lost). */
export async function completeTask(
  client: DiegoClient,
  task: ITask,
  cellId: string,
  c: Completion,
  now = new Date(),
): Promise<void> {
  settled(await complete(client, task, cellId, c, now), `task ${task.spec.taskGuid}`);
}
