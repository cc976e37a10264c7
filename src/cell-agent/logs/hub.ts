// The cell's log hub: every log envelope of this cell's instances passes through here on its way to live
// subscribers of its log guid (Loggregator's firehose / `cf logs`, scoped to one cell) and into a ring of
// the last lines per log guid (Loggregator's recent logs). It keeps only what is in memory: a subscriber
// sees lines published after it subscribed, plus the recent ring if it asks for it.
import { RingBuffer } from './ring.ts';
import type { LogEnvelope } from './envelope.ts';

export type LogSubscriber = (envelope: LogEnvelope) => void;

export interface LogHubOptions {
  /** Lines kept per log guid for recent logs (default 100). */
  recentLines?: number;
  /**
   * Log guids whose recent lines are kept; the least recently written is forgotten first (default 256: a cell
   * runs at most ~250 containers, Diego's max_containers). Lines are up to 60 KiB, so this bounds the memory.
   */
  maxLogGuids?: number;
}

export class LogHub {
  readonly #recentLines: number;
  readonly #maxLogGuids: number;
  /** Insertion order = least recently written first. */
  readonly #recent = new Map<string, RingBuffer<LogEnvelope>>();
  readonly #subscribers = new Map<string, Set<LogSubscriber>>();
  readonly #suffixSubscribers = new Set<[string, LogSubscriber]>();

  constructor(opts: LogHubOptions = {}) {
    this.#recentLines = opts.recentLines ?? 100;
    this.#maxLogGuids = opts.maxLogGuids ?? 256;
  }

  /**
   * Publishes a line of `logGuid`'s stream. The key is the log guid, not the envelope's source_id: an LRP's
   * metric tags may set source_id to something else (Cloud Controller: the app guid, usually the log guid too).
   */
  publish(logGuid: string, envelope: LogEnvelope): void {
    const guid = logGuid;
    let ring = this.#recent.get(guid);
    if (ring) {
      this.#recent.delete(guid);
    } else {
      ring = new RingBuffer(this.#recentLines);
      if (this.#recent.size >= this.#maxLogGuids) {
        const oldest = this.#recent.keys().next().value;
        if (oldest !== undefined) this.#recent.delete(oldest);
      }
    }
    this.#recent.set(guid, ring);
    ring.push(envelope);
    const subscribers = [...(this.#subscribers.get(guid) ?? [])];
    for (const [suffix, subscriber] of this.#suffixSubscribers) if (guid.endsWith(suffix)) subscribers.push(subscriber);
    for (const subscriber of subscribers) {
      try {
        subscriber(envelope);
      } catch {
        // a failing subscriber must not stop the others, nor the app's process
      }
    }
  }

  /** Calls `subscriber` with every envelope of `logGuid` from now on; returns the unsubscribe function. */
  subscribe(logGuid: string, subscriber: LogSubscriber): () => void {
    let set = this.#subscribers.get(logGuid);
    if (!set) {
      set = new Set();
      this.#subscribers.set(logGuid, set);
    }
    set.add(subscriber);
    return () => {
      set.delete(subscriber);
      if (set.size === 0 && this.#subscribers.get(logGuid) === set) this.#subscribers.delete(logGuid);
    };
  }

  /** Streams whose key ends with `suffix` (a log guid across namespaces: keys are "<namespace>/<logGuid>"). */
  keysEndingWith(suffix: string): string[] {
    return [...new Set([...this.#recent.keys(), ...this.#subscribers.keys()])].filter((k) => k.endsWith(suffix));
  }

  /** Like subscribe, for every stream whose key ends with `suffix`, also those that start later. */
  subscribeSuffix(suffix: string, subscriber: LogSubscriber): () => void {
    this.#suffixSubscribers.add([suffix, subscriber]);
    const entry = [...this.#suffixSubscribers].at(-1)!;
    return () => void this.#suffixSubscribers.delete(entry);
  }

  /** The last lines of `logGuid`, oldest first. */
  recent(logGuid: string): LogEnvelope[] {
    return this.#recent.get(logGuid)?.toArray() ?? [];
  }

  /** Who would get a line of `key` now: its subscribers and those following every namespace's stream of it. */
  subscriberCount(key: string): number {
    let n = this.#subscribers.get(key)?.size ?? 0;
    for (const [suffix] of this.#suffixSubscribers) if (key.endsWith(suffix)) n++;
    return n;
  }
}
