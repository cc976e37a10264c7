// The cell's side of Diego's evacuation (rep/evacuation, rep/generator/internal/evacuation_lrp_processor.go):
// on SIGTERM or a node drain the cell marks itself evacuating (Cell status.evacuating, so the auction leaves
// it out) and rejects new work; every LRP container still starting is unclaimed and destroyed, every running
// one becomes an EVACUATING copy that keeps serving until its replacement runs elsewhere; tasks finish. After
// the evacuation timeout (Diego: 600 s) what is left is stranded: the copies are removed and the containers
// stopped. Written against a small interface so the rep and the tests' simulated cells share it.
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { API_VERSION } from '../crds/kinds.ts';
import type { IActualLRP, ITask } from '../crds/models.ts';
import type { EventRecorder } from '../lib/events.ts';
import { registry } from '../lib/metrics.ts';
import { withDefaults } from '../lib/options.ts';
import { DiegoClient, isNotFound } from '../lib/resources.ts';
import { holds } from '../lifecycle/actual-lrp.ts';
import { evacuateClaimed, evacuateRunning, removeEvacuating, setCellEvacuating } from '../lifecycle/evacuation.ts';
import { copyPresenceOfName } from '../lifecycle/names.ts';
import { releaseContainer, unplace } from '../lifecycle/ops.ts';
import { cellObjectName } from './presence.ts';

/** Diego's StrandedEvacuatingActualLRPs: EVACUATING instances still on this cell when evacuation ended. */
const stranded = new Gauge({
  name: 'StrandedEvacuatingActualLRPs',
  help: 'EVACUATING ActualLRPs left on this cell when its evacuation ended (their replacement was not running)',
  registers: [registry],
});

/** An LRP container of the cell: the ORDINARY record it was claimed as, and its instance guid. */
export interface LRPContainer {
  namespace: string;
  name: string;
  instanceGuid: string;
}

/** What the evacuator needs from a cell. */
export interface EvacuatingCell {
  lrpContainers(): LRPContainer[];
  /** Task containers still running. */
  taskContainers(): number;
  /** Stops the container of this instance guid, if it still runs, and resolves once it is gone. */
  stopContainer(instanceGuid: string): Promise<void>;
  /** Stops every container left (LRPs and tasks). */
  stopAll(): Promise<void>;
}

export interface EvacuatorOptions {
  client: DiegoClient;
  cellId: string;
  cell: EvacuatingCell;
  log: Logger;
  /** Diego: evacuation_timeout 600 s. */
  timeoutMs?: number;
  /** Diego: evacuation_polling_interval 10 s; removed copies wake the loop sooner. */
  pollIntervalMs?: number;
  /** Evacuating / Evacuated Events on the Cell (kubectl describe cell); none if absent. */
  events?: EventRecorder;
}

export interface EvacuationResult {
  timedOut: boolean;
  /** EVACUATING copies still on the cell at the end (removed, their containers stopped). */
  stranded: number;
  /** Ended by resume() (the node uncordoned): what had not moved yet goes on running here. */
  cancelled?: boolean;
}

export class Evacuator {
  private readonly o: Required<Omit<EvacuatorOptions, 'events'>> & Pick<EvacuatorOptions, 'events'>;
  private readonly log: Logger;
  private running?: Promise<EvacuationResult>;
  private wakeUp?: () => void;
  private cancelled = false;
  private cellUid?: Promise<string | undefined>;

  constructor(opts: EvacuatorOptions) {
    this.o = withDefaults({ timeoutMs: 600_000, pollIntervalMs: 10_000 }, opts);
    this.log = opts.log.child({ component: 'evacuator' });
  }

  /** True from the start of an evacuation until resume(): the cell takes no new work. */
  get evacuating(): boolean {
    return this.running !== undefined;
  }

  /**
   * The cell takes work again (a fresh start, or the node was uncordoned). An evacuation under way stops where it
   * is: instances not yet moved go on running here (nothing is stranded), and the EVACUATING copies of those that
   * were handed over stay until their replacements run, wherever the auction places them (this cell included).
   */
  async resume(): Promise<void> {
    if (this.running) {
      this.cancelled = true;
      this.wakeUp?.();
      await this.running;
    }
    this.running = undefined;
    this.cancelled = false;
    const cell = await this.o.client.get('Cell', undefined, cellObjectName(this.o.cellId));
    if (cell.status?.evacuating) await setCellEvacuating(this.o.client, cellObjectName(this.o.cellId), false);
  }

  /** Evacuates the cell (once; later calls wait for the same evacuation). */
  evacuate(): Promise<EvacuationResult> {
    this.running ??= this.run();
    return this.running;
  }

  /** Work placed here while evacuating goes back to the auction (Diego's rep refuses all work then). */
  async reject(kind: 'ActualLRP' | 'Task', obj: IActualLRP | ITask): Promise<void> {
    const back = await unplace(this.o.client, obj, { byCell: this.o.cellId });
    if (back.outcome === 'done')
      this.log.info({ kind, name: obj.metadata.name }, 'evacuating: work sent back to the auction');
  }

  /**
   * An EVACUATING copy on this cell changed. Once deleted (its replacement runs, or its DesiredLRP is gone),
   * its container is stopped, then the copy released ("stop, then remove").
   */
  async onCopy(copy: IActualLRP): Promise<void> {
    if (!copy.metadata.deletionTimestamp) return;
    const guid = copy.status?.instanceGuid;
    if (guid) await this.o.cell.stopContainer(guid);
    await releaseContainer(this.o.client, copy);
    if (guid) this.log.info({ name: copy.metadata.name, instanceGuid: guid }, 'evacuated instance stopped');
    this.wakeUp?.();
  }

  private async run(): Promise<EvacuationResult> {
    const { client, cell, cellId, timeoutMs, pollIntervalMs } = this.o;
    // Without the flag the auction may still place work here; the cell sends it back, so carry on.
    await setCellEvacuating(client, cellObjectName(cellId), true).catch((err: unknown) =>
      this.log.warn({ err }, 'could not mark the Cell evacuating (needs patch on cells/status)'),
    );
    const deadline = Date.now() + timeoutMs;
    this.cellUid = undefined; // read once per evacuation (a Cell deleted and registered again has a new uid)
    this.log.info({ timeoutMs, containers: cell.lrpContainers().length }, 'evacuating the cell');
    this.event(
      'Normal',
      'Evacuating',
      `moving ${cell.lrpContainers().length} LRP instances elsewhere, waiting for ${cell.taskContainers()} tasks; it takes no new work (at most ${Math.round(timeoutMs / 1000)}s)`,
    );
    let timedOut = false;
    for (;;) {
      if (this.cancelled) {
        this.log.info(
          { containers: cell.lrpContainers().length },
          'evacuation cancelled (the node is schedulable again): what has not moved goes on running here',
        );
        this.event(
          'Normal',
          'EvacuationCancelled',
          `the node is schedulable again: ${cell.lrpContainers().length} instances not moved yet go on running here`,
        );
        return { timedOut: false, stranded: 0, cancelled: true };
      }
      for (const c of cell.lrpContainers()) {
        if (this.cancelled) break;
        await this.evacuateOne(c).catch((err: unknown) => this.log.warn({ err, name: c.name }, 'evacuating'));
      }
      await this.removeOrphanCopies().catch((err: unknown) => this.log.warn({ err }, 'removing evacuated copies'));
      if (cell.lrpContainers().length === 0 && cell.taskContainers() === 0) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        timedOut = true;
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(pollIntervalMs, left));
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
    const count = await this.cleanup();
    stranded.set(count);
    this.log.info({ timedOut, stranded: count }, 'evacuation ended');
    if (timedOut)
      this.event(
        'Warning',
        'EvacuationTimedOut',
        `evacuation timed out after ${Math.round(timeoutMs / 1000)}s: ${count} instances stopped before their replacements ran`,
      );
    else this.event('Normal', 'Evacuated', 'every instance moved and every task ended: the cell is empty');
    return { timedOut, stranded: count };
  }

  /** An Event on this cell's Cell (read once per evacuation: kubectl describe finds events by the object's uid). */
  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    const events = this.o.events;
    if (!events) return;
    const name = cellObjectName(this.o.cellId);
    this.cellUid ??= this.o.client.get('Cell', undefined, name).then(
      (c) => c.metadata.uid,
      () => {
        this.cellUid = undefined; // not kept: the next Event reads it again
        return undefined;
      },
    );
    void this.cellUid.then((uid) =>
      events.record({ apiVersion: API_VERSION, kind: 'Cell', metadata: { name, uid } }, type, reason, message),
    );
  }

  /** One container: still starting → unclaim and destroy it; running → keep it while its copy is needed. */
  private async evacuateOne(c: LRPContainer): Promise<void> {
    const { client, cell, cellId } = this.o;
    const me = { instanceGuid: c.instanceGuid, cellId };
    let ordinary: IActualLRP | undefined;
    try {
      ordinary = await client.get('ActualLRP', c.namespace, c.name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const claimedHere = ordinary?.status?.state === 'CLAIMED' && holds(ordinary, me);
    if (claimedHere) {
      await evacuateClaimed(client, c.namespace, c.name, me);
      this.log.info({ name: c.name }, 'evacuating: starting instance sent back to the auction');
      return cell.stopContainer(c.instanceGuid);
    }
    if (!(await evacuateRunning(client, c.namespace, c.name, me))) await cell.stopContainer(c.instanceGuid);
  }

  /** The EVACUATING copies on this cell, from the API server (the records this cell is responsible for). */
  private async copiesHere(): Promise<IActualLRP[]> {
    const here = await this.o.client.list('ActualLRP', { fieldSelector: `spec.cellId=${this.o.cellId}` });
    return here.filter(
      (a) => a.status?.presence === 'EVACUATING' && copyPresenceOfName(a.metadata.name ?? '') === 'EVACUATING',
    );
  }

  /** Copies whose container ended on its own (crashed or stopped while evacuating) are removed (Diego). */
  private async removeOrphanCopies(): Promise<void> {
    const live = new Set(this.o.cell.lrpContainers().map((c) => c.instanceGuid));
    for (const copy of await this.copiesHere()) {
      if (!live.has(copy.status?.instanceGuid ?? '')) await removeEvacuating(this.o.client, copy, true);
    }
  }

  /** Diego's evacuation cleanup: count and remove the stranded copies, then stop whatever still runs. */
  private async cleanup(): Promise<number> {
    let count = 0;
    try {
      for (const copy of await this.copiesHere()) {
        if (!copy.metadata.deletionTimestamp) count++;
        this.log.warn(
          { name: copy.metadata.name, instanceGuid: copy.status?.instanceGuid },
          'evacuation timed out before the replacement ran: stopping the evacuating instance',
        );
        if (copy.status?.instanceGuid) await this.o.cell.stopContainer(copy.status.instanceGuid);
        await removeEvacuating(this.o.client, copy, true);
      }
    } catch (err) {
      this.log.warn({ err }, 'removing stranded evacuating instances');
    }
    await this.o.cell.stopAll();
    return count;
  }
}
