// Task outcomes kept on the cell's disk between "the task's container finished" and "the Task says so": written
// before the container is destroyed, removed once reported. An agent killed in between leaves the outcome for the
// next agent, which reports it instead of failing the task as "task container does not exist" (a client that
// retries failed tasks would otherwise run it twice). One small JSON file per task; writes are atomic.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../lib/files.ts';
import path from 'node:path';

export interface SavedOutcome {
  namespace: string;
  name: string;
  /** The Task object's uid: an outcome is never reported on another object of the same name. */
  uid: string;
  taskGuid: string;
  failed: boolean;
  failureReason?: string;
  result?: string;
  /** A retryable failure before the task ran: it is rejected (Diego's RejectTask), not completed. */
  rejection?: string;
}

export class ResultStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  #file(handle: string): string {
    return path.join(this.dir, `${handle}.json`);
  }

  async save(handle: string, outcome: SavedOutcome): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.#file(handle);
    await writeFileAtomic(file, JSON.stringify(outcome), { mode: 0o600 });
  }

  async get(handle: string): Promise<SavedOutcome | undefined> {
    try {
      return JSON.parse(await readFile(this.#file(handle), 'utf8')) as SavedOutcome;
    } catch {
      return undefined; // none, or torn by a crash mid-write (the .tmp is ignored)
    }
  }

  async remove(handle: string): Promise<void> {
    await rm(this.#file(handle), { force: true });
  }

  /** Every saved outcome, by container handle. */
  async list(): Promise<Map<string, SavedOutcome>> {
    const out = new Map<string, SavedOutcome>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return out;
    }
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const handle = name.slice(0, -'.json'.length);
      const saved = await this.get(handle);
      if (saved) out.set(handle, saved);
    }
    return out;
  }
}
