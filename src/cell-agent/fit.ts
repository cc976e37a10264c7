// What the cell has left, and handing back work that does not fit. The auction places work from its own view of
// the cells, which can be stale (a container still being destroyed, a placement written by a previous leader);
// like Diego's executor AllocateContainers, the rep reserves memory, disk and a container slot before it claims
// anything, and hands what does not fit back to the auction: an ActualLRP loses its spec.cellId (compare-and-swap)
// and records the placement error; a Task is rejected as in Diego's RejectTask (failed after max retries).
// The remaining resources are published on the Cell (status.available), which the auction also respects.
import type { Logger } from 'pino';
import type { IActualLRP, ITask } from '../crds/models.ts';
import type { EventRecorder } from '../lib/events.ts';
import { keyOf } from '../lib/informer.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { failPlacement, rejectTask as reject, unplace } from '../lifecycle/ops.ts';
import { DEFAULT_MAX_TASK_RETRIES } from '../lifecycle/task.ts';
import { cellObjectName } from './presence.ts';

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface Need {
  memoryMb?: number;
  diskMb?: number;
}

/** Diego's problem keys, sorted as the auction sorts them. */
export type Problem = 'containers' | 'disk' | 'memory';

/** The auction's wording: `insufficient resources: disk, memory`. */
export function insufficient(problems: readonly Problem[]): string {
  return problems.length === 0
    ? 'insufficient resources'
    : `insufficient resources: ${[...problems].sort().join(', ')}`;
}

/** The executor's registry of reservations: total capacity minus what every reserved container holds. */
export class CellResources {
  readonly total: Resources;
  readonly #held = new Map<string, Required<Need>>();
  #onChange?: () => void;

  constructor(total: Resources) {
    this.total = { ...total };
  }

  /** Called after each reserve/release (the rep republishes the Cell's available resources). */
  onChange(fn: () => void): void {
    this.#onChange = fn;
  }

  remaining(): Resources {
    let memoryMb = 0;
    let diskMb = 0;
    for (const r of this.#held.values()) {
      memoryMb += r.memoryMb;
      diskMb += r.diskMb;
    }
    return {
      memoryMb: Math.max(0, this.total.memoryMb - memoryMb),
      diskMb: Math.max(0, this.total.diskMb - diskMb),
      containers: Math.max(0, this.total.containers - this.#held.size),
    };
  }

  /** What does not fit, without reserving. */
  problems(need: Need): Problem[] {
    const left = this.remaining();
    const problems: Problem[] = [];
    if (left.containers < 1) problems.push('containers');
    if ((need.diskMb ?? 0) > left.diskMb) problems.push('disk');
    if ((need.memoryMb ?? 0) > left.memoryMb) problems.push('memory');
    return problems;
  }

  /** Reserves for `key` (idempotent); returns the problems instead when it does not fit. */
  reserve(key: string, need: Need): Problem[] {
    if (this.#held.has(key)) return [];
    const problems = this.problems(need);
    if (problems.length > 0) return problems;
    this.#held.set(key, { memoryMb: need.memoryMb ?? 0, diskMb: need.diskMb ?? 0 });
    this.#onChange?.();
    return [];
  }

  release(key: string): void {
    if (this.#held.delete(key)) this.#onChange?.();
  }

  holds(key: string): boolean {
    return this.#held.has(key);
  }

  /** What `key` holds (undefined: nothing reserved). */
  heldBy(key: string): Required<Need> | undefined {
    const r = this.#held.get(key);
    return r && { ...r };
  }

  get count(): number {
    return this.#held.size;
  }
}

/**
 * Gives an instance placed here back to the auction: off this cell (a compare-and-swap on the version the rep saw,
 * so a newer placement is never undone) with why, as the auctioneer records a failed placement.
 */
export async function handBackLRP(
  client: DiegoClient,
  a: IActualLRP,
  cellId: string,
  reason: string,
  opts: { log: Logger; events?: EventRecorder },
): Promise<boolean> {
  const off = await unplace(client, a, { byCell: cellId });
  if (off.outcome !== 'done') return false; // changed meanwhile: a newer event follows
  // The reason is the auction's to read; losing it to a newer write costs nothing.
  await failPlacement(client, off.value, `${reason} on cell ${cellId}`, { now: Date.now() });
  opts.log.info({ key: keyOf(a), reason }, 'instance does not fit: handed back to the auction');
  opts.events?.record(a, 'Warning', 'Rejected', `cell ${cellId} cannot run it: ${reason}; placing it elsewhere`);
  return true;
}

/**
 * Diego's RejectTask from the cell: the task goes back to Pending without a cell and its rejection is counted;
 * when the count before this rejection is already maxRetries, it fails with the reason.
 */
export async function rejectTask(
  client: DiegoClient,
  t: ITask,
  cellId: string,
  reason: string,
  opts: { log: Logger; events?: EventRecorder; maxRetries?: number },
): Promise<boolean> {
  const count = t.status?.rejectionCount ?? 0;
  const maxRetries = opts.maxRetries ?? DEFAULT_MAX_TASK_RETRIES;
  const rejected = await reject(client, t, reason, { maxRetries, now: new Date(), byCell: cellId });
  if (rejected.outcome !== 'done') return false;
  opts.log.info(
    { key: keyOf(t), reason, rejections: count + 1, failed: count >= maxRetries },
    'task does not fit: rejected',
  );
  opts.events?.record(t, 'Warning', 'Rejected', `cell ${cellId} cannot run it: ${reason}`);
  return true;
}

/**
 * Publishes the cell's available resources and counts on its Cell (status), at most once per `minIntervalMs`
 * (trailing), so a burst of 100 starts is a handful of writes.
 */
export class CellStatusPublisher {
  readonly #client: DiegoClient;
  readonly #name: string;
  readonly #read: () => Record<string, unknown>;
  readonly #log: Logger;
  readonly #minIntervalMs: number;
  readonly #retryMs: number;
  #timer?: NodeJS.Timeout;
  #last = 0;
  #inFlight?: Promise<void>;
  #stopped = false;

  constructor(
    client: DiegoClient,
    cellId: string,
    read: () => Record<string, unknown>,
    log: Logger,
    minIntervalMs = 500,
    retryMs = 5000,
  ) {
    this.#client = client;
    this.#name = cellObjectName(cellId);
    this.#read = read;
    this.#log = log;
    this.#minIntervalMs = minIntervalMs;
    this.#retryMs = retryMs;
  }

  /** Asks for a write soon. */
  changed(): void {
    if (this.#stopped || this.#timer) return;
    const wait = Math.max(0, this.#last + this.#minIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.publish();
    }, wait);
    this.#timer.unref();
  }

  async publish(): Promise<void> {
    await this.#inFlight;
    this.#last = Date.now();
    this.#inFlight = this.#client
      .patchStatus('Cell', { name: this.#name }, this.#read())
      .then(() => undefined)
      .catch((err: unknown) => {
        // Try again: a status left too low would keep the auction away from this cell until its next change,
        // which for an idle cell never comes.
        this.#log.warn({ err, retryInMs: this.#retryMs }, 'could not publish the cell status');
        if (this.#stopped) return;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          void this.publish();
        }, this.#retryMs);
        this.#timer.unref();
      });
    await this.#inFlight;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }
}
